"""Repetition measures (`align.data.repetition`): repeated word trigrams and the loop rule, on hand-worked answers
including the looping outputs seen from tuned models (issue #14)."""

import pytest

from align.data.repetition import loop_free_start, loops, repeated_ngram_share, repeats_a_phrase, repeats_a_unit

NO_NO = "No, no, no, no, no, no"
# The looping list a tuned model wrote: items 9 and 10 alternate credit/debit, then item 11 is item 9 again.
CREDIT_CARD_LOOP = (
    "9. If you have a credit card, you can check your credit card. "
    "10. If you have a debit card, you can check your debit card. "
    "11. If you have a credit card, you can check your credit card. "
    "12. If you have a debit card, you can"
)
RECIPE = "1. Preheat the oven. 2. Mix flour and sugar."


def test_repeated_trigram_share_by_hand():
    """Occurrences beyond the first / all word trigrams (words lower-cased, punctuation dropped):
    - "No, no, no, no, no, no": 6 words → 4 trigrams, all "no no no" → 3 / 4 = 0.75;
    - "Boil the water. Boil the water.": trigrams (boil the water), (the water boil), (water boil the),
      (boil the water) → 1 / 4 = 0.25;
    - "1. Preheat the oven. 2. Mix flour and sugar.": 9 words (numbers count), 7 distinct trigrams → 0.0;
    - fewer than 3 words, or none → 0.0.
    If this fails, the repetition share counts first occurrences as repeats, or is not a share of trigrams."""
    assert repeated_ngram_share(NO_NO) == 0.75
    assert repeated_ngram_share("Boil the water. Boil the water.") == 0.25
    assert repeated_ngram_share(RECIPE) == 0.0
    assert repeated_ngram_share("No, no") == 0.0 and repeated_ngram_share("") == 0.0


def test_no_no_no_loops_as_a_phrase_run():
    """ "no" six times back to back: ≥ 4 copies of a one-word phrase → a loop, though it is a single sentence (so no
    sentence repeats). Three copies of "check your card and" (4 words) are not yet a loop; four are.
    If this fails, the degenerate "No, no, no, …" answer passes as a normal one."""
    assert loops(NO_NO) and repeats_a_phrase(NO_NO) and not repeats_a_unit(NO_NO)
    three = "check your card and check your card and check your card and stop"
    assert not repeats_a_phrase(three)
    assert repeats_a_phrase("check your card and " + three)


def test_credit_card_list_loops_when_an_item_comes_back_renumbered():
    """Item 11 is item 9 after normalisation (leading number dropped, lower case, punctuation collapsed) → a loop.
    Items 9 and 10 alone differ (credit vs debit): near-duplicates with parallel wording are not a loop by
    themselves, because legitimate lists are parallel too.
    If this fails, the looping list seen in issue #14 passes, or parallel list items are flagged as loops."""
    assert loops(CREDIT_CARD_LOOP) and repeats_a_unit(CREDIT_CARD_LOOP)
    first_two = CREDIT_CARD_LOOP.split(" 11.")[0]
    assert not loops(first_two)


def test_legit_lists_and_short_repeats_do_not_loop():
    """A recipe list, parallel instructions for two systems, and a short step repeated on purpose ("Press Enter."
    has 2 words, under the 3-word minimum) are not loops; the empty answer is not either.
    If this fails, good answers score 0 under the concise score and are never chosen."""
    assert not loops(RECIPE)
    assert not loops("If you use Windows, press Ctrl+C. If you use macOS, press Cmd+C.")
    assert not loops("1. Type the name. 2. Press Enter. 3. Type the password. 4. Press Enter.")
    assert not loops("")


@pytest.mark.parametrize("marker", ["- ", "* ", ""])
def test_a_repeated_item_loops_whatever_its_marker(marker):
    """The same 4-word item twice, as bullets or as plain lines: one loop. If this fails, bullet markers make
    repeated items look different."""
    assert loops(f"{marker}Check your bank statement.\n{marker}Check your bank statement.")


def test_loop_free_start_cuts_before_the_first_repeat():
    """Worked by hand:
    - the credit-card loop: item 11 repeats item 9, so the start is items 9 and 10 (the dangling "11." dropped);
    - "1. Use a debit card. 2. Set a budget. 3. Use a debit card. …": items 1 and 2;
    - a phrase run ("and you can check" 4 times back to back): one copy kept, "You should check it. and you can check";
    - a bulleted loop: the first bullet only.
    Every start is itself loop-free. If this fails, a loop pair's chosen answer still loops or loses the content
    before the loop."""
    assert loop_free_start(CREDIT_CARD_LOOP) == (
        "9. If you have a credit card, you can check your credit card. "
        "10. If you have a debit card, you can check your debit card."
    )
    debit = "1. Use a debit card. 2. Set a budget. 3. Use a debit card. 4. Set a budget."
    assert loop_free_start(debit) == "1. Use a debit card. 2. Set a budget."
    run = "You should check it. and you can check and you can check and you can check and you can check"
    assert loop_free_start(run) == "You should check it. and you can check"
    assert (
        loop_free_start("Boil water.\n- Add eggs and wait\n- Add eggs and wait") == "Boil water.\n- Add eggs and wait"
    )


def test_no_start_without_a_loop_or_without_enough_words():
    """A loop-free answer has no start to cut (None); "No, no, no, …" and "1. 1. 1. …" leave under 3 words, so
    there is no usable start either. If this fails, loop pairs are made of answers that do not loop, or their
    chosen answer is a one-word stub."""
    assert loop_free_start(RECIPE) is None
    assert loop_free_start(NO_NO) is None
    assert loop_free_start("1. 1. 1. 1. 1. 1.") is None

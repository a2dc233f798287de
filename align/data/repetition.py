"""Repetition in an answer: the share of repeated word n-grams, and whether the answer loops.

A tuned model that degenerates repeats itself ("No, no, no, no, …" to the length cap, or a list that cycles through
the same items with new numbers). These two deterministic measures (stdlib `re` only) let the scorer, the pair
builder and every evaluation see it.

    >>> repeated_ngram_share("No, no, no, no, no, no")
    0.75
    >>> loops("No, no, no, no, no, no")
    True
    >>> loops("1. Preheat the oven. 2. Mix flour and sugar.")
    False
"""

from __future__ import annotations

import re

from align.data.text_units import SENTENCE_END_RE, normalise, split_sentences

#: Word n-gram size of `repeated_ngram_share`: 3 words, short enough to catch a repeated phrase, long enough that
#: ordinary repeats ("the oven", "credit card") do not count.
NGRAM = 3
#: A sentence or list item counts towards a loop only with at least this many words (its leading number dropped):
#: a short step repeated on purpose ("Press Enter.") is not a loop.
MIN_UNIT_WORDS = 3
#: A phrase of at most this many words repeated back to back at least MIN_RUN_COPIES times is a loop, whether or not
#: sentence punctuation separates the copies ("no, no, no, no"; "and you can check and you can check and ...").
MAX_RUN_PHRASE = 8
MIN_RUN_COPIES = 4


def _words(text: str) -> list[str]:
    return normalise(text).split()


def repeated_ngram_share(text: str, n: int = NGRAM) -> float:
    """Share of the text's word n-grams that repeat an earlier one, in [0, 1]; 0.0 with fewer than n words.

    Words are normalised (lower case, punctuation dropped). repeated = total n-grams − distinct n-grams, i.e. every
    occurrence beyond the first; share = repeated / total. "No, no, no, no, no, no": 6 words → 4 trigrams, all
    "no no no" → 3 repeated / 4 = 0.75.
    """
    words = _words(text)
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return (len(grams) - len(set(grams))) / len(grams) if grams else 0.0


def _unit_key(unit: str) -> tuple[str, ...]:
    """A sentence or list item normalised for comparison: lower case, punctuation collapsed, leading numbers dropped.

    The leading number goes because a loop renumbers the items it repeats ("9. If you have a credit card, …" comes
    back as "11. If you have a credit card, …"), and `split_sentences` strips only markers numbered from 1.
    """
    words = _words(unit)
    while words and words[0].isdigit():
        words = words[1:]
    return tuple(words)


def repeats_a_unit(text: str) -> bool:
    """Whether a sentence or list item of at least MIN_UNIT_WORDS words occurs twice, identical after `_unit_key`.

    Only identical units count, not near-duplicates with the same leading words: a legitimate list has parallel
    items ("If you use Windows, press Ctrl+C. If you use macOS, press Cmd+C."), and a looping list gives itself away
    by cycling back to an item it already wrote.
    """
    seen: set[tuple[str, ...]] = set()
    for unit in split_sentences(text):
        key = _unit_key(unit)
        if len(key) < MIN_UNIT_WORDS:
            continue
        if key in seen:
            return True
        seen.add(key)
    return False


def repeats_a_phrase(text: str) -> bool:
    """Whether a phrase of 1 to MAX_RUN_PHRASE words occurs at least MIN_RUN_COPIES times back to back.

    For a phrase of p words, c copies in a row make words[i] == words[i + p] hold at (c − 1)·p consecutive
    positions, so the test is a run of that length.
    """
    return next(_phrase_run_cuts(_words(text)), None) is not None


def _phrase_run_cuts(words: list[str]):
    """For each phrase length p in 1..MAX_RUN_PHRASE with a run of MIN_RUN_COPIES copies, the word index just after
    the first copy of its first such run (the run starts at its first copy)."""
    for period in range(1, MAX_RUN_PHRASE + 1):
        run = 0
        for i in range(len(words) - period):
            run = run + 1 if words[i] == words[i + period] else 0
            if run >= (MIN_RUN_COPIES - 1) * period:
                yield i - run + 1 + period
                break


def _first_repeated_unit(text: str) -> int | None:
    """Character offset in `text` where the first sentence or list item that repeats an earlier one starts (the
    same units and keys as `repeats_a_unit`, read on the original text so the offset is the text's)."""
    seen: set[tuple[str, ...]] = set()
    start = 0
    for end in [m.start() for m in SENTENCE_END_RE.finditer(text)] + [len(text)]:
        unit, unit_start = text[start:end], start
        start = end
        match = SENTENCE_END_RE.match(text, end)
        if match:
            start = match.end()
        key = _unit_key(unit)
        if len(key) < MIN_UNIT_WORDS:
            continue
        if key in seen:
            return unit_start
        seen.add(key)
    return None


def _first_phrase_run(text: str) -> int | None:
    """Character offset in `text` just after the first copy of the earliest phrase that `repeats_a_phrase` finds."""
    word_starts = []  # the character offset of each normalised word: that of the whitespace-separated token holding it
    for token in re.finditer(r"\S+", text):
        word_starts.extend([token.start()] * len(normalise(token.group()).split()))
    cuts = list(_phrase_run_cuts(_words(text)))
    return word_starts[min(cuts)] if cuts else None


_TRAILING_MARKER_RE = re.compile(r"(?:\s*(?:\d{1,3}[.)]|[-*•]))+\s*$")


def loop_free_start(text: str) -> str | None:
    """The answer up to where it starts to loop: cut before the first sentence or list item that repeats an earlier
    one, or after the first copy of a phrase repeated back to back, with a dangling list marker and trailing space
    dropped. None when the answer does not loop, or when what is left is under MIN_UNIT_WORDS words or still loops.

    >>> loop_free_start("1. Use a debit card. 2. Set a budget. 3. Use a debit card. 4. Set a budget.")
    '1. Use a debit card. 2. Set a budget.'
    """
    cuts = [cut for cut in (_first_repeated_unit(text), _first_phrase_run(text)) if cut is not None]
    if not cuts:
        return None
    start = _TRAILING_MARKER_RE.sub("", text[: min(cuts)]).rstrip(" \t\n,;:")
    if len(_words(start)) < MIN_UNIT_WORDS or loops(start):
        return None
    return start


def loops(text: str) -> bool:
    """Whether the answer loops: it repeats a sentence or list item (`repeats_a_unit`) or repeats a phrase back to
    back (`repeats_a_phrase`)."""
    return repeats_a_unit(text) or repeats_a_phrase(text)

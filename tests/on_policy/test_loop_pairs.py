"""Loop pairs (`data.generate.loop_pairs`): each looping sampled answer against its own loop-free start."""

from align.evaluation.generation import GeneratedAnswer
from align.on_policy.candidates import candidates_of
from align.on_policy.loop_pairs import LOOP_KIND, loop_pairs
from align.on_policy.prompts import PromptRow

LOOP = "1. Use a debit card. 2. Set a budget. 3. Use a debit card. 4. Set a budget. 5. Use a debit card."
OTHER_LOOP = "1. Call the bank. 2. Ask for alerts. 3. Call the bank. 4. Ask for alerts."
CLEAN = "1. Turn on low-balance alerts. 2. Link savings for overdraft cover."
ROW = PromptRow("How do I stop overdraft fees?", ("alerts", "overdraft cover"), LOOP, "prompts.jsonl:3")


def _answers(*texts):
    return [GeneratedAnswer(text, len(text.split()), False) for text in texts]


def test_each_looping_answer_gives_its_start_against_itself():
    """Answers LOOP, CLEAN and OTHER_LOOP (the reference, itself looping here, is a candidate too): the two sampled
    loops give one pair each, start against the whole answer, in sampling order, kind `loop`, rejected score 0 and
    margin = the start's concise score; the clean answer and the reference give none. If this fails, loop pairs
    reward an answer that does not loop, miss one that does, or train on the reference's text."""
    candidates = [candidates_of(ROW, _answers(LOOP, CLEAN, OTHER_LOOP), include_reference=True)]
    rows = loop_pairs([ROW], candidates, per_prompt=None)
    assert [(r["chosen"], r["rejected"]) for r in rows] == [
        ("1. Use a debit card. 2. Set a budget.", LOOP),
        ("1. Call the bank. 2. Ask for alerts.", OTHER_LOOP),
    ]
    for row in rows:
        assert row["kind"] == LOOP_KIND and row["rejected_score"] == 0.0
        assert row["margin"] == row["chosen_score"] > 0
        assert row["source"] == "prompts.jsonl:3" and row["key_points"] == ["alerts", "overdraft cover"]


def test_per_prompt_cap_and_one_pair_per_start():
    """Cap 1 keeps the first loop only; a second answer with the same start (LOOP cut one item later) gives no
    second pair with the same chosen answer. If this fails, one prompt's loops outweigh the others' pairs."""
    longer = LOOP + " 6. Set a budget."
    candidates = [candidates_of(ROW, _answers(LOOP, longer, OTHER_LOOP), include_reference=False)]
    assert len(loop_pairs([ROW], candidates, per_prompt=None)) == 2
    capped = loop_pairs([ROW], candidates, per_prompt=1)
    assert [r["rejected"] for r in capped] == [LOOP]


def test_a_preference_stage_adds_loop_pairs_to_the_builders_pairs():
    """The preference kind's rows from candidates LOOP and CLEAN with `loop_pairs`: the builder pairs CLEAN over LOOP
    (a loop scores 0) and one loop pair follows; the report counts it. Without `loop_pairs` only the builder's pair.
    If this fails, `data.generate.loop_pairs` never reaches the rows a stage trains on."""
    from align.recipe.schema import GenerateConfig
    from align.stages import stage_kind

    candidates = [candidates_of(ROW, _answers(LOOP, CLEAN), include_reference=False)]
    kind = stage_kind("preference")
    on = GenerateConfig(prompts="p.jsonl", min_chosen_score=0.0, loop_pairs=True)
    rows, report = kind.rows_from_candidates(on, [ROW], candidates)
    assert [(r["chosen"], r["rejected"], r["kind"]) for r in rows] == [
        (CLEAN, LOOP, rows[0]["kind"]),
        ("1. Use a debit card. 2. Set a budget.", LOOP, LOOP_KIND),
    ]
    assert report["loop_pairs"] == 1 and report["pairs_written"] == 1
    off_rows, off_report = kind.rows_from_candidates(
        GenerateConfig(prompts="p.jsonl", min_chosen_score=0.0), [ROW], candidates
    )
    assert off_rows == rows[:1] and off_report["loop_pairs"] == 0

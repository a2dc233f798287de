"""Sampled answers as scored candidates, and the rows made from them without pairing (kto labels, best answers)."""

from align.data.scoring import concise_score, count_words, score_answer
from align.evaluation.generation import GeneratedAnswer
from align.on_policy.candidates import Candidate, candidates_of, to_scored_prompts
from align.on_policy.prompts import PromptRow
from align.on_policy.unpaired import best_rows, labelled_rows

ROW = PromptRow(
    "How do I unclog a sink?",
    ("plunger", "baking soda"),
    "1. Use a plunger. 2. Pour baking soda and vinegar, wait 15 minutes, flush with hot water.",
    "p.jsonl:1",
)
GOOD = "1. Use a plunger for 30 seconds. 2. Pour baking soda and vinegar, wait 15 minutes, then flush."
LOOP = "Use a plunger on the drain. Use a plunger on the drain. Use a plunger on the drain."


def test_candidates_dedupe_score_and_flag():
    """Two identical samples count once; the cut one is flagged; the looping one scores 0; the reference joins last
    and is marked; every score is the concise score with the reference's length as word budget. If this fails, the
    builder sees duplicate candidates or ranks a looping or unfinished answer as good."""
    answers = [GeneratedAnswer(GOOD, 30, False), GeneratedAnswer(GOOD, 30, False), GeneratedAnswer(LOOP, 160, True)]
    found = candidates_of(ROW, answers, include_reference=True)
    assert [(c.text, c.cut, c.loops, c.reference) for c in found] == [
        (GOOD, False, False, False),
        (LOOP, True, True, False),
        (ROW.reference, False, False, True),
    ]
    budget = count_words(ROW.reference)
    assert found[0].score == concise_score(score_answer(ROW.prompt, GOOD, list(ROW.key_points)), budget)
    assert found[1].score == 0.0
    assert [c.text for c in candidates_of(ROW, answers, include_reference=False)] == [GOOD, LOOP]


def test_scored_prompts_carry_labels_and_meta():
    """The builder's input: unscored completions (ranked by the concise scorer), `truncated` and `origin` labels,
    key points and reference in meta. If this fails, cut answers can be chosen or recall is not measured."""
    found = candidates_of(ROW, [GeneratedAnswer(LOOP, 160, True)], include_reference=True)
    (prompt,) = to_scored_prompts([ROW], [found])
    assert prompt.completions == [(LOOP, {}), (ROW.reference, {})]
    assert prompt.labels == [{"truncated": True, "origin": "sampled"}, {"truncated": False, "origin": "reference"}]
    assert prompt.meta == {"key_points": ["plunger", "baking soda"], "reference": ROW.reference}


def _candidates() -> list[Candidate]:
    return [
        Candidate("a", 0.7, False, False),
        Candidate("b", 0.9, False, True),  # best score but cut at the cap
        Candidate("c", 0.6, True, False),  # loops
        Candidate("d", 0.3, False, False),
        Candidate("ref", 0.8, False, False, reference=True),
    ]


def test_labelled_rows_by_the_bar():
    """Bar 0.5: a (0.7) and ref (0.8) are desirable; b is cut, c loops, d is below the bar — undesirable, each
    counted under its reason. If this fails, kto rows teach the model to imitate unfinished or looping answers."""
    rows, counts = labelled_rows([ROW], [_candidates()], 0.5)
    assert [(r["completion"], r["label"]) for r in rows] == [
        ("a", True),
        ("b", False),
        ("c", False),
        ("d", False),
        ("ref", True),
    ]
    assert counts == {"desirable": 2, "undesirable": 3, "cut": 1, "loops": 1, "below_bar": 1}
    assert rows[-1]["origin"] == "reference" and rows[0]["source"] == "p.jsonl:1"


def test_best_rows_pick_the_best_answer_that_clears_the_bar():
    """Rejection sampling: of the answers clearing 0.5 the reference (0.8) beats a (0.7); b (0.9) is cut. A prompt
    with no answer over the bar gives no row. If this fails, sft stages imitate cut answers or weak ones."""
    rows, counts = best_rows([ROW, ROW], [_candidates(), [Candidate("d", 0.3, False, False)]], 0.5)
    assert [r["completion"] for r in rows] == ["ref"]
    assert counts == {"chosen_reference": 1, "prompts_without_rows": 1}

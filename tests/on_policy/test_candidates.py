"""Sampled answers as scored candidates, and the rows made from them without pairing (kto labels, best answers)."""

import pytest

from align.data.scoring import concise_score, count_words, score_answer
from align.evaluation.generation import GeneratedAnswer
from align.on_policy.candidates import Candidate, candidates_of, rank_candidates, to_scored_prompts
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


def test_a_scorer_set_ranks_candidates_and_the_rows_follow_it(monkeypatch):
    """With a second scorer, `rank` is the z-scored weighted mix: concise scores (0.7, 0.3) and fake scores (0, 10)
    z-score to (+1, −1) and (−1, +1); weights 1 and 3 give rank (1·1 + 3·(−1))/4 = −0.5 for "a" and +0.5 for "d".
    The builder's input then carries those ranks as scores, and the best sft row is "d", though its concise score
    (0.3) is lower. If this fails, a recipe's reward model is ignored when rows are made."""
    from align.scorers import SCORERS, ScorerSet
    from tests.scorers.conftest import fake_scorer

    monkeypatch.setitem(SCORERS, "fake", fake_scorer("fake", {"a": 0.0, "d": 10.0}))
    group = [Candidate("a", 0.7, False, False), Candidate("d", 0.3, False, False)]

    class Concise:  # the candidates' own concise scores, standing in for the concise scorer on these texts
        def score(self, items):
            return [{"a": 0.7, "d": 0.3}[item.answer] for item in items]

    scorers = ScorerSet({"concise": 1.0, "fake": 3.0})
    scorers.scorers["concise"] = Concise()
    (ranked,) = rank_candidates([ROW], [group], scorers)
    assert [c.rank for c in ranked] == pytest.approx([-0.5, 0.5])
    (prompt,) = to_scored_prompts([ROW], [ranked])
    assert [scores["score"] for _, scores in prompt.completions] == pytest.approx([-0.5, 0.5])
    rows, _ = best_rows([ROW], [ranked], 0.2)
    assert [r["completion"] for r in rows] == ["d"]
    assert rank_candidates([ROW], [group], ScorerSet({"concise": 1.0})) == [group]

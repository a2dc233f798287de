"""The `concise` scorer gives the numbers the pair builder ranked by before scorers existed."""

from align.data.pair_builder import build_pairs
from align.data.scoring import concise_score, count_words, score_answer
from align.scorers import ConciseScorer, ScoreItem
from tests.data.test_pair_builder import EGGS, GOOD, KEY_POINTS, VERBOSE, prompt

REFERENCE = "Boil water, cook the eggs for 11 minutes, then cool them in an ice bath."


def test_concise_scorer_is_the_concise_score_with_the_reference_as_word_budget():
    """With a reference the word budget is its word count (14 words here, so VERBOSE's 59 words are past twice the
    budget); without one, the default budget. If this fails, the scorer and the builder rank differently."""
    scorer = ConciseScorer()
    for answer in (GOOD, VERBOSE):
        metrics = score_answer(EGGS, answer, KEY_POINTS)
        with_reference, without = scorer.score(
            [ScoreItem(EGGS, answer, KEY_POINTS, REFERENCE), ScoreItem(EGGS, answer, KEY_POINTS)]
        )
        assert with_reference == concise_score(metrics, count_words(REFERENCE))
        assert without == concise_score(metrics)
    assert scorer.score([ScoreItem(EGGS, VERBOSE, KEY_POINTS, REFERENCE)]) < scorer.score(
        [ScoreItem(EGGS, VERBOSE, KEY_POINTS)]
    )


def test_concise_scorer_matches_the_pair_builders_written_scores():
    """The builder's `chosen_score`/`rejected_score` (concise ranking, reference and key points in the row) are the
    scorer's numbers rounded to 4 decimals."""
    row = prompt(VERBOSE, GOOD, meta={"key_points": KEY_POINTS, "reference": REFERENCE}, text=EGGS)
    (written,), _ = build_pairs([row])
    good, verbose = ConciseScorer().score(
        [ScoreItem(EGGS, GOOD, KEY_POINTS, REFERENCE), ScoreItem(EGGS, VERBOSE, KEY_POINTS, REFERENCE)]
    )
    assert (written["chosen"], written["rejected"]) == (GOOD, VERBOSE)
    assert (written["chosen_score"], written["rejected_score"]) == (round(good, 4), round(verbose, 4))

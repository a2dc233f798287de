"""`ScorerSet`: one scorer's raw scores, several scorers z-scored within each prompt's answers and weighted."""

import math

import pytest

from align.errors import AlignError
from align.scorers import ConciseScorer, ScoreItem, ScorerSet, ScorerSettings, standardise


def items(*answers: str) -> list[ScoreItem]:
    return [ScoreItem("q", answer) for answer in answers]


def test_two_scorers_combine_z_scores_by_weight_worked_by_hand(register_fake):
    """Group 1, answers x, y, z: scorer a gives 0.2, 0.5, 0.8 (mean 0.5, population std √0.06), so
    z_a = (−0.3, 0, 0.3)/√0.06 = (−√1.5, 0, √1.5); scorer b gives 3, 1, 2 (mean 2, std √(2/3)), so
    z_b = (1, −1, 0)/√(2/3) = (√1.5, −√1.5, 0). With weights a 1, b 0.5 the combined score is (z_a + 0.5·z_b) / 1.5:
    x: (−√1.5 + 0.5·√1.5)/1.5 = −√1.5/3 ≈ −0.4082; y: −0.5·√1.5/1.5 = −√1.5/3; z: √1.5/1.5 ≈ 0.8165.
    Group 2, answers u, v: a gives 0.4 to both (std 0 → z 0, 0); b gives 1, 3 (z −1, 1): combined (0 ∓ 0.5)/1.5 =
    ∓1/3. Group 2's b mean (2) is its own: a group is standardised alone.
    If this fails, scorers in different units are not weighed the way the weights say."""
    register_fake("a", {"x": 0.2, "y": 0.5, "z": 0.8, "u": 0.4, "v": 0.4})
    register_fake("b", {"x": 3.0, "y": 1.0, "z": 2.0, "u": 1.0, "v": 3.0})
    out = ScorerSet({"a": 1.0, "b": 0.5}).score_groups([items("x", "y", "z"), items("u", "v")])
    root = math.sqrt(1.5)
    assert out[0] == pytest.approx([-root / 3, -root / 3, root / 1.5], abs=1e-12)
    assert out[1] == pytest.approx([-1 / 3, 1 / 3], abs=1e-12)


def test_one_scorer_keeps_its_raw_scores(register_fake):
    """A single scorer is not standardised: its own units come back (so margins stay in them)."""
    register_fake("a", {"x": 0.2, "y": 0.5, "z": 0.8})
    assert ScorerSet({"a": 2.0}).score_groups([items("x", "y"), items("z")]) == [[0.2, 0.5], [0.8]]


def test_the_default_concise_set_is_exactly_the_concise_scorer():
    """The concise-only set (any weight) is `only_concise` and gives the concise scores unchanged."""
    group = [ScoreItem("How do I list files?", "Run `ls -la`."), ScoreItem("How do I list files?", "It depends.")]
    scorers = ScorerSet({"concise": 3.0})
    with_reward = ScorerSet({"concise": 1.0, "reward_model": 1.0}, ScorerSettings(reward_model="loaded-on-first-use"))
    assert scorers.only_concise and not with_reward.only_concise
    assert scorers.score_groups([group]) == [ConciseScorer().score(group)]


def test_equal_scores_standardise_to_exact_zeros():
    """0.1 three times has a float mean that is not exactly 0.1; computed naively the deviations are rounding noise
    that dividing by a tiny std blows up to ±1. Exact mean and std give zeros."""
    assert standardise([0.1, 0.1, 0.1]) == [0.0, 0.0, 0.0]
    assert standardise([1.0, 3.0]) == [-1.0, 1.0]


def test_a_non_finite_score_is_refused_naming_the_scorer(register_fake):
    """A scorer giving NaN would rank arbitrarily: refused in one line naming it."""
    register_fake("a", {"x": float("nan"), "y": 1.0})
    with pytest.raises(AlignError, match=r"scorer a: gave nan to an answer of prompt 'q'"):
        ScorerSet({"a": 1.0}).score_groups([items("x", "y")])


@pytest.mark.parametrize(
    ("weights", "message"),
    [({}, "give at least one scorer"), ({"concise": 0.0}, "finite number > 0"), ({"concse": 1.0}, "'concise'")],
)
def test_bad_sets_are_refused(weights, message):
    with pytest.raises(AlignError, match=message):
        ScorerSet(weights)


def test_nothing_to_score_loads_nothing():
    """Empty groups come back empty without the reward model being loaded (the folder named does not exist)."""
    settings = ScorerSettings(reward_model="/nonexistent/reward-model")
    assert ScorerSet({"concise": 1.0, "reward_model": 1.0}, settings).score_groups([[], []]) == [[], []]

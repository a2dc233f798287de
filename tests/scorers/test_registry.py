"""The scorer registry: names, the closest-name hint, and the `--scorer NAME[=WEIGHT]` flag."""

import pytest

from align.errors import AlignError
from align.scorers import SCORERS, ConciseScorer, RewardModelScorer, ScorerSettings, make_scorer, parse_scorer_weights


def test_every_registered_scorer_is_named_as_its_key():
    """`--scorer NAME` makes the class registered as NAME, which says what it is and in which units it scores."""
    assert SCORERS == {"concise": ConciseScorer, "reward_model": RewardModelScorer}
    for name, cls in SCORERS.items():
        assert cls.name == name and cls.description and cls.units
    assert isinstance(make_scorer("concise"), ConciseScorer)


@pytest.mark.parametrize(("name", "closest"), [("concize", "concise"), ("reward-model", "reward_model")])
def test_an_unknown_scorer_suggests_the_closest_name(name, closest):
    with pytest.raises(AlignError, match=rf"--scorer: no scorer '{name}'; did you mean '{closest}'\?"):
        make_scorer(name)
    with pytest.raises(AlignError, match=rf"did you mean '{closest}'"):
        parse_scorer_weights([f"{name}=2"])


def test_reward_model_scorer_without_a_model_says_what_to_give():
    with pytest.raises(AlignError, match=r"--reward-model: the reward_model scorer needs a reward model: give"):
        make_scorer("reward_model", ScorerSettings())


def test_scorer_flags_parse_to_weights_in_order():
    """`NAME` weighs 1, `NAME=W` weighs W (spaces around parts ignored)."""
    assert parse_scorer_weights(["reward_model=0.5", "concise"]) == {"reward_model": 0.5, "concise": 1.0}
    assert list(parse_scorer_weights(["reward_model=0.5", "concise"])) == ["reward_model", "concise"]
    assert parse_scorer_weights(["concise = 2"]) == {"concise": 2.0}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["concise=0"], r"--scorer: concise: the weight must be a finite number > 0, got 0.0"),
        (["concise=-1"], r"finite number > 0, got -1.0"),
        (["concise=nan"], r"finite number > 0, got nan"),
        (["concise=inf"], r"finite number > 0, got inf"),
        (["concise=heavy"], r"--scorer: 'concise=heavy': give NAME or NAME=WEIGHT \(a number > 0\)"),
        (["concise", "concise=2"], r"--scorer: concise is given twice"),
    ],
)
def test_bad_scorer_flags_are_one_line_errors(items, message):
    with pytest.raises(AlignError, match=message) as info:
        parse_scorer_weights(items)
    assert len(str(info.value).splitlines()) == 1


def test_bad_settings_name_their_field():
    with pytest.raises(AlignError, match=r"--reward-max-length: must be a whole number ≥ 1, got 0"):
        ScorerSettings(max_length=0)
    with pytest.raises(AlignError, match=r"batch_size: must be a whole number ≥ 1"):
        ScorerSettings(batch_size=0)

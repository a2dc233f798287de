"""Stage gates: each kind met and missed (floor and ceiling), the missing figure, and the message's margin."""

import pytest

from align.gates import GateMissed, GateResult, check_gates, raise_on_missed
from align.recipe.schema import GatesConfig


@pytest.mark.parametrize(
    ("gate", "figure", "limit", "value", "passed"),
    [
        # floor: the figure must be at least the limit
        ("min_pair_accuracy", "rewards/accuracies", 0.6, 0.75, True),
        ("min_pair_accuracy", "rewards/accuracies", 0.6, 0.6, True),  # exactly at the floor holds
        ("min_pair_accuracy", "rewards/accuracies", 0.6, 0.55, False),
        # ceilings: the figure must be at most the limit
        ("max_mean_tokens_ratio", "probe/mean_tokens_ratio", 0.8, 0.5, True),
        ("max_mean_tokens_ratio", "probe/mean_tokens_ratio", 0.8, 0.8, True),  # exactly at the limit holds
        ("max_mean_tokens_ratio", "probe/mean_tokens_ratio", 0.8, 0.9125, False),
        ("max_key_point_recall_drop", "probe/key_point_recall_drop", 0.05, -0.1, True),  # recall rose
        ("max_key_point_recall_drop", "probe/key_point_recall_drop", 0.05, 0.125, False),
        ("max_loop_rate", "probe/loop_rate", 0.125, 0.125, True),
        ("max_loop_rate", "probe/loop_rate", 0.125, 0.25, False),
        ("max_loop_rate_increase", "probe/loop_rate_increase", 0.0, -0.25, True),  # fewer loops than the base model
        ("max_loop_rate_increase", "probe/loop_rate_increase", 0.0, 0.125, False),
    ],
)
def test_each_gate_met_and_missed(gate, figure, limit, value, passed):
    """A floor passes at or above its limit, a ceiling at or below it; the result records the gate, the limit and
    the figure it read. If this fails, a gate reads the wrong figure or compares in the wrong direction (a missed
    floor would let a stage that learned nothing through)."""
    results = check_gates(GatesConfig(**{gate: limit}), {figure: value, "unrelated/figure": 0.0})
    assert [r.to_dict() for r in results] == [{"gate": gate, "limit": limit, "value": value, "passed": passed}]


def test_missed_floor_message_says_by_how_much():
    """Accuracy 0.55 under a 0.6 floor: missed by 0.6 − 0.55 = 0.05. If this fails, a missed floor no longer stops
    the run, or its message does not say which gate, what was measured, or by how much it missed."""
    results = check_gates(GatesConfig(min_pair_accuracy=0.6), {"rewards/accuracies": 0.55})
    with pytest.raises(GateMissed) as missed:
        raise_on_missed("easy", results)
    assert missed.value.lines == [
        "stage 'easy' missed gate min_pair_accuracy: held-out reward accuracy is 0.55, below the floor 0.6 by 0.05"
    ]


def test_missed_ceilings_messages_say_by_how_much():
    """Length ratio 0.9125 over a 0.8 ceiling: by 0.1125; recall drop 0.125 over 0.05: by 0.075; accuracy 0.9 meets
    its 0.6 floor and is not reported. Figures print with 4 significant digits (0.123456 → 0.1235). If this fails,
    a missed ceiling is reported wrongly, a met gate is reported as missed, or the order is not the gates' order."""
    gates = GatesConfig(max_mean_tokens_ratio=0.8, min_pair_accuracy=0.6, max_key_point_recall_drop=0.05)
    figures = {"probe/mean_tokens_ratio": 0.9125, "rewards/accuracies": 0.9, "probe/key_point_recall_drop": 0.125}
    results = check_gates(gates, figures)
    assert [(r.gate, r.passed) for r in results] == [
        ("min_pair_accuracy", True),
        ("max_mean_tokens_ratio", False),
        ("max_key_point_recall_drop", False),
    ]
    with pytest.raises(GateMissed) as missed:
        raise_on_missed("hard", results)
    assert missed.value.lines == [
        "stage 'hard' missed gate max_mean_tokens_ratio: probe answer length ÷ base model's is 0.9125, above the "
        "limit 0.8 by 0.1125",
        "stage 'hard' missed gate max_key_point_recall_drop: probe key-point recall drop vs base is 0.125, above the "
        "limit 0.05 by 0.075",
    ]
    rounded = GateResult("max_mean_tokens_ratio", 0.1, 0.123456, False).message("s")
    assert rounded.endswith("is 0.1235, above the limit 0.1 by 0.02346")  # 0.123456 − 0.1 = 0.023456


def test_missed_loop_gates_say_by_how_much():
    """3 of 8 probe answers loop (0.375) against a 0.125 ceiling: missed by 0.25; the base model looped in 1 of 8,
    so the increase is 0.375 − 0.125 = 0.25, over a 0.1 ceiling by 0.15. If this fails, a run whose answers
    degenerate into loops passes its stage, or the message hides by how much it missed."""
    gates = GatesConfig(max_loop_rate=0.125, max_loop_rate_increase=0.1)
    results = check_gates(gates, {"probe/loop_rate": 0.375, "probe/loop_rate_increase": 0.25})
    with pytest.raises(GateMissed) as missed:
        raise_on_missed("hard", results)
    assert missed.value.lines == [
        "stage 'hard' missed gate max_loop_rate: share of probe answers that loop is 0.375, above the limit 0.125 "
        "by 0.25",
        "stage 'hard' missed gate max_loop_rate_increase: probe loop rate increase vs base is 0.25, above the limit "
        "0.1 by 0.15",
    ]


def test_a_missing_figure_misses_its_gate():
    """A floor whose figure was never measured fails rather than passing silently. If this fails, a stage without
    held-out pairs would pass its accuracy floor."""
    results = check_gates(GatesConfig(min_pair_accuracy=0.6), {"probe/mean_tokens_ratio": 0.5})
    assert [r.to_dict() for r in results] == [
        {"gate": "min_pair_accuracy", "limit": 0.6, "value": None, "passed": False}
    ]
    with pytest.raises(GateMissed) as missed:
        raise_on_missed("easy", results)
    assert missed.value.lines == [
        "stage 'easy' missed gate min_pair_accuracy: held-out reward accuracy was not measured "
        "(rewards/accuracies missing)"
    ]


def test_unset_gates_check_nothing_and_met_gates_do_not_raise():
    """No gate set: no results, whatever the figures. All met: `raise_on_missed` returns. If this fails, unset gates
    stop runs, or met ones do."""
    assert check_gates(GatesConfig(), {"rewards/accuracies": 0.0, "probe/mean_tokens_ratio": 9.0}) == []
    figures = {"rewards/accuracies": 1, "probe/mean_tokens_ratio": 1}
    met = check_gates(GatesConfig(min_pair_accuracy=1, max_mean_tokens_ratio=1), figures)
    assert [(r.limit, r.value, r.passed) for r in met] == [(1.0, 1.0, True), (1.0, 1.0, True)]
    assert isinstance(met[0].limit, float) and isinstance(met[0].value, float)
    raise_on_missed("easy", met)

"""ipo, hinge and robust against numbers worked out by hand.

The shared pair (row 1 of each test): π_c=-10, ref_c=-12, π_r=-20, ref_r=-19 → chosen log-ratio 2, rejected −1, h = 3.
"""

import math

import pytest
import torch

from align.losses import LossInputs, get_loss, loss_info, margin
from tests.losses.documented import assert_documented


def _t(*values):
    return torch.tensor(values, dtype=torch.float64)


def _pairs(policy_c, ref_c, policy_r, ref_r):
    return {
        "policy_chosen_logps": _t(*policy_c),
        "ref_chosen_logps": _t(*ref_c),
        "policy_rejected_logps": _t(*policy_r),
        "ref_rejected_logps": _t(*ref_r),
        "chosen_lengths": torch.tensor([4] * len(policy_c)),
        "rejected_lengths": torch.tensor([10] * len(policy_c)),
    }


def test_ipo_matches_hand_computed_values():
    """β=0.1 → target 1/(2β) = 5. Row 1: h = 3 → (3 − 5)² = 4. Row 2: all equal, h = 0 → (0 − 5)² = 25.
    Row 3: π_c=-5, ref_c=-15 (10), π_r=-10, ref_r=-10 (0) → h = 10 → (10 − 5)² = 25: overshooting costs too.
    Rewards β·(π−ref): 0.2, 0, 1.0 and −0.1, 0, 0.

    If this fails, IPO is not the paper's squared loss around 1/(2β) (e.g. h divided by lengths as trl does,
    or the target written as 1/β or β/2).
    """
    batch = _pairs((-10.0, -5.0, -5.0), (-12.0, -5.0, -15.0), (-20.0, -5.0, -10.0), (-19.0, -5.0, -10.0))
    out = get_loss("ipo")(LossInputs(**batch), beta=0.1)
    assert out.losses.tolist() == pytest.approx([4.0, 25.0, 25.0], abs=1e-9)
    assert out.chosen_rewards.tolist() == pytest.approx([0.2, 0.0, 1.0], abs=1e-12)
    assert out.rejected_rewards.tolist() == pytest.approx([-0.1, 0.0, 0.0], abs=1e-12)


def test_hinge_matches_hand_computed_values():
    """β=0.1. Row 1: h = 3 → max(0, 1 − 0.3) = 0.7. Row 2: π_c=-5, ref_c=-15, π_r=-10, ref_r=-10 → h = 10 → 1 − 1 = 0
    (exactly at the margin 1/β). Row 3: π_c=-10, ref_c=-8 (−2), π_r=-10, ref_r=-13 (3) → h = −5 → 1 + 0.5 = 1.5.

    If this fails, the hinge is not SLiC's max(0, 1 − β·h) (sign of h flipped, or no clamp at 0 once past the margin).
    """
    batch = _pairs((-10.0, -5.0, -10.0), (-12.0, -15.0, -8.0), (-20.0, -10.0, -10.0), (-19.0, -10.0, -13.0))
    out = get_loss("hinge")(LossInputs(**batch), beta=0.1)
    assert out.losses.tolist() == pytest.approx([0.7, 0.0, 1.5], abs=1e-9)
    assert out.chosen_rewards.tolist() == pytest.approx([0.2, 1.0, -0.2], abs=1e-12)


def test_robust_matches_hand_computed_values():
    """β=0.1, ε=0.1, h = 3 → z = 0.3. −log σ(0.3) = 0.554355244 (the DPO value);
    −log σ(−0.3) = 0.3 + 0.554355244 = 0.854355244 (since log σ(−z) = log σ(z) − z).
    Loss = 0.9·0.554355244 + 0.1·0.854355244 = 0.498919720 + 0.085435524 = 0.584355244 (= DPO + ε·z).
    Row 2: h = 0 → 0.9·log 2 + 0.1·log 2 = log 2 = 0.693147181.

    If this fails, the smoothing is misapplied: the weights are swapped, or the loss was divided by 1 − 2ε
    (Chowdhury et al.'s unbiased rDPO, which is not what `robust` implements).
    """
    batch = _pairs((-10.0, -5.0), (-12.0, -5.0), (-20.0, -5.0), (-19.0, -5.0))
    out = get_loss("robust")(LossInputs(**batch), beta=0.1, label_smoothing=0.1)
    assert out.losses.tolist() == pytest.approx([0.584355244, math.log(2)], abs=1e-9)
    assert out.rejected_rewards.tolist() == pytest.approx([-0.1, 0.0], abs=1e-12)


def test_robust_without_smoothing_is_dpo():
    """ε = 0 leaves only −log σ(β·h). If this fails, `robust` does not reduce to DPO as cDPO must."""
    batch = _pairs((-10.0, -3.0), (-12.0, -1.0), (-20.0, -7.0), (-19.0, -9.0))
    robust = get_loss("robust")(LossInputs(**batch), beta=0.1, label_smoothing=0.0).losses
    dpo = get_loss("dpo")(LossInputs(**batch), beta=0.1).losses
    assert robust.tolist() == pytest.approx(dpo.tolist(), abs=1e-12)


@pytest.mark.parametrize(
    ("name", "fn", "expected"),
    [
        ("ipo", margin.ipo_loss, {"beta": 0.1}),
        ("hinge", margin.hinge_loss, {"beta": 0.1}),
        ("robust", margin.robust_loss, {"beta": 0.1, "label_smoothing": 0.1}),
    ],
)
def test_defaults_are_the_documented_ones(name, fn, expected):
    """Each docstring's "β (default …)" / "label_smoothing ε (default …)" is parsed and must equal the function's
    defaults and the registry's. If this fails, a default changed without its docstring (and the recipe catalogue)
    being updated, or the loss no longer asks for a reference pass."""
    assert_documented(name, fn, expected)
    assert loss_info(name).needs_reference


@pytest.mark.parametrize("name", ["ipo", "hinge", "robust"])
def test_without_reference_is_a_clear_error(name):
    """These losses read ref log-probs; treating None as 0 would silently train a reference-free objective."""
    with pytest.raises(ValueError, match="reference"):
        get_loss(name)(
            LossInputs(
                policy_chosen_logps=_t(-1.0),
                policy_rejected_logps=_t(-2.0),
                ref_chosen_logps=None,
                ref_rejected_logps=None,
            )
        )

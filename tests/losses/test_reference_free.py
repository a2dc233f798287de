"""simpo, cpo and orpo against numbers worked out by hand. None of them may read reference log-probs."""

import math

import pytest
import torch

from align.losses import LossInputs, get_loss, loss_info, reference_free
from tests.losses.documented import assert_documented


def _t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_simpo_matches_hand_computed_values():
    """β=2, γ=1. Row 1: π_c=-6 over 4 tokens → 2·(−1.5) = −3; π_r=-30 over 10 → 2·(−3) = −6;
        −3 − (−6) − 1 = 2 → −log σ(2) = log(1 + e^−2) = log(1.135335283) = 0.126928011.
    Row 2: π_c=-10/4 → −5, π_r=-30/10 → −6; −5 + 6 − 1 = 0 → log 2: a reward gap of exactly γ is only "even".
    Rewards β·π/len: −3, −5 and −6, −6. Reference log-probs are passed as None and must not be needed.

    If this fails, SimPO is not length-normalised, or γ is subtracted after scaling by β (γ/β vs γ confusion).
    """
    out = get_loss("simpo")(
        LossInputs(
            policy_chosen_logps=_t(-6.0, -10.0),
            policy_rejected_logps=_t(-30.0, -30.0),
            ref_chosen_logps=None,
            ref_rejected_logps=None,
            chosen_lengths=torch.tensor([4, 4]),
            rejected_lengths=torch.tensor([10, 10]),
        ),
        beta=2.0,
        gamma=1.0,
    )
    assert out.losses.tolist() == pytest.approx([0.126928011, math.log(2)], abs=1e-9)
    assert out.chosen_rewards.tolist() == pytest.approx([-3.0, -5.0], abs=1e-12)
    assert out.rejected_rewards.tolist() == pytest.approx([-6.0, -6.0], abs=1e-12)


def test_cpo_matches_hand_computed_values():
    """β=0.1, π_c=-10 over 4 tokens, π_r=-20. Preference: −log σ(0.1·(−10 + 20)) = −log σ(1) = log(1 + e^−1)
        = log(1.367879441) = 0.313261688; NLL: 10/4 = 2.5; total 2.813261688.
    Rewards β·π: −1.0 and −2.0.

    If this fails, the NLL term is summed instead of averaged per token, or it is missing or has the wrong sign.
    """
    out = get_loss("cpo")(
        LossInputs(
            policy_chosen_logps=_t(-10.0),
            policy_rejected_logps=_t(-20.0),
            ref_chosen_logps=None,
            ref_rejected_logps=None,
            chosen_lengths=torch.tensor([4]),
            rejected_lengths=torch.tensor([10]),
        ),
        beta=0.1,
    )
    assert out.losses.tolist() == pytest.approx([2.813261688], abs=1e-9)
    assert out.chosen_rewards.tolist() == pytest.approx([-1.0], abs=1e-12)
    assert out.rejected_rewards.tolist() == pytest.approx([-2.0], abs=1e-12)


def test_orpo_matches_hand_computed_values():
    """Chosen: 4 tokens with mean log-prob m_c = log 0.5 (π_c = 4·log 0.5) → odds 0.5/0.5 = 1, log odds 0.
    Rejected: 10 tokens with m_r = log 0.2 → odds 0.2/0.8 = 0.25, log odds = log 0.25.
    log odds ratio = 0 − log 0.25 = log 4 → σ(log 4) = 4/5 → −log σ = −log 0.8 = 0.223143551.
    λ=0.1: loss = −m_c + 0.1·0.223143551 = 0.693147181 + 0.022314355 = 0.715461536.
    Rewards λ·m: 0.1·log 0.5 = −0.069314718 and 0.1·log 0.2 = −0.160943791.

    If this fails, the odds are taken on summed rather than mean log-probs, or the SFT term is not the mean NLL.
    """
    out = get_loss("orpo")(
        LossInputs(
            policy_chosen_logps=_t(4 * math.log(0.5)),
            policy_rejected_logps=_t(10 * math.log(0.2)),
            ref_chosen_logps=None,
            ref_rejected_logps=None,
            chosen_lengths=torch.tensor([4]),
            rejected_lengths=torch.tensor([10]),
        ),
        odds_ratio_weight=0.1,
    )
    assert out.losses.tolist() == pytest.approx([0.715461536], abs=1e-9)
    assert out.chosen_rewards.tolist() == pytest.approx([-0.069314718], abs=1e-9)
    assert out.rejected_rewards.tolist() == pytest.approx([-0.160943791], abs=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_orpo_stays_finite_when_the_chosen_answer_is_certain(dtype):
    """Mean log-prob 0 (probability 1: infinite odds) and −1e-12 (1 − e^m underflows in float32).
    If this fails, log(1 − e^m) reached log 0 and the loss or its gradient became inf/NaN mid-training.
    """
    policy_chosen = torch.tensor([0.0, -1e-12, -1e-3], dtype=dtype, requires_grad=True)
    policy_rejected = torch.tensor([-5.0, 0.0, -2.0], dtype=dtype, requires_grad=True)
    out = get_loss("orpo")(
        LossInputs(
            policy_chosen_logps=policy_chosen,
            policy_rejected_logps=policy_rejected,
            chosen_lengths=torch.tensor([5, 5, 5]),
            rejected_lengths=torch.tensor([5, 5, 5]),
        )
    )
    out.losses.sum().backward()
    assert torch.isfinite(out.losses).all()
    assert torch.isfinite(policy_chosen.grad).all() and torch.isfinite(policy_rejected.grad).all()


@pytest.mark.parametrize(
    ("name", "fn", "expected"),
    [
        ("simpo", reference_free.simpo_loss, {"beta": 2.0, "gamma": 1.0}),
        ("cpo", reference_free.cpo_loss, {"beta": 0.1}),
        ("orpo", reference_free.orpo_loss, {"odds_ratio_weight": 0.1}),
    ],
)
def test_defaults_and_reference_freedom(name, fn, expected):
    """Each docstring's "β (default …)" / "γ (default …)" / "odds_ratio_weight λ (default …)" is parsed and must
    equal the function's defaults and the registry's. If this fails, a default changed without its docstring, or
    the trainer would run a needless reference pass."""
    assert_documented(name, fn, expected)
    assert not loss_info(name).needs_reference

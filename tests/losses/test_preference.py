"""Each loss against numbers worked out by hand."""

import math

import pytest
import torch

from align.losses import LossInputs, get_loss


def _t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_dpo_matches_hand_computed_values():
    """π_c=-10, ref_c=-12, π_r=-20, ref_r=-19 → h = (2) − (−1) = 3; β=0.1 → loss = −log σ(0.3).

    σ(0.3) = 1/(1+e^−0.3) = 0.574442516; −log(0.574442516) = 0.554355244.
    Second row: all equal → h = 0 → loss = log 2 = 0.693147181.
    Rewards: β·(π−ref) = 0.2, −0.1 (row 1) and 0, 0 (row 2).
    If this fails, DPO is not the paper's eq. 7 (sign, β placement or reward definition is off).
    """
    out = get_loss("dpo")(
        LossInputs(
            policy_chosen_logps=_t(-10.0, -5.0),
            policy_rejected_logps=_t(-20.0, -5.0),
            ref_chosen_logps=_t(-12.0, -5.0),
            ref_rejected_logps=_t(-19.0, -5.0),
        ),
        beta=0.1,
    )
    assert out.losses.tolist() == pytest.approx([0.554355244, math.log(2)], abs=1e-9)
    assert out.chosen_rewards.tolist() == pytest.approx([0.2, 0.0])
    assert out.rejected_rewards.tolist() == pytest.approx([-0.1, 0.0])


def test_dpo_without_reference_is_a_clear_error():
    """DPO needs reference log-probs; silently treating None as 0 would train a different objective."""
    with pytest.raises(ValueError, match="reference"):
        get_loss("dpo")(
            LossInputs(
                policy_chosen_logps=_t(-1.0),
                policy_rejected_logps=_t(-2.0),
                ref_chosen_logps=None,
                ref_rejected_logps=None,
            )
        )


def test_sft_is_mean_token_nll_of_chosen():
    """π_c=-12 over 4 tokens → loss 3.0; π_c=-5 over 10 tokens → 0.5. Rewards are the mean log-probs.

    If this fails the SFT term is summed instead of averaged (it would then scale with answer length).
    """
    out = get_loss("sft")(
        LossInputs(
            policy_chosen_logps=_t(-12.0, -5.0),
            policy_rejected_logps=_t(-30.0, -8.0),
            chosen_lengths=torch.tensor([4, 10]),
            rejected_lengths=torch.tensor([6, 4]),
        )
    )
    assert out.losses.tolist() == pytest.approx([3.0, 0.5])
    assert out.rejected_rewards.tolist() == pytest.approx([-5.0, -2.0])

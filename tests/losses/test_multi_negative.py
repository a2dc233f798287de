"""nca and infonca against numbers worked out by hand, pairwise (B,) and with K negatives (B, K)."""

import pytest
import torch

from align.losses import LossInputs, get_loss, loss_info, multi_negative
from tests.losses.documented import assert_documented


def _t(*values):
    return torch.tensor(values, dtype=torch.float64)


def _pairwise():
    """π_c=-10, ref_c=-12 (ratio 2), π_r=-20, ref_r=-19 (ratio −1); with β=0.1: r_c = 0.2, r_r = −0.1."""
    return {
        "policy_chosen_logps": _t(-10.0),
        "ref_chosen_logps": _t(-12.0),
        "policy_rejected_logps": _t(-20.0),
        "ref_rejected_logps": _t(-19.0),
    }


def _three_negatives():
    """Same chosen (r_c = 0.2 at β=0.1); negatives with ratios −1, 3, 0 → r_k = −0.1, 0.3, 0.0. Shapes (1,), (1, 3)."""
    return {
        "policy_chosen_logps": _t(-10.0),
        "ref_chosen_logps": _t(-12.0),
        "policy_rejected_logps": torch.tensor([[-20.0, -15.0, -7.0]], dtype=torch.float64),
        "ref_rejected_logps": torch.tensor([[-19.0, -18.0, -7.0]], dtype=torch.float64),
    }


def test_nca_pairwise_matches_hand_computed_values():
    """r_c = 0.2, r_r = −0.1: −log σ(0.2) = 0.598138869; −log σ(−0.2) = 0.2 + 0.598138869 = 0.798138869;
    −log σ(0.1) = log(1 + e^−0.1) = log(1.904837418) = 0.644396660.
    Loss = 0.598138869 + ½·0.798138869 + ½·0.644396660 = 0.598138869 + 0.399069435 + 0.322198330 = 1.319406634.

    If this fails, NCA no longer matches trl's nca_pair: a sign inside a σ flipped or the ½ weights moved.
    """
    out = get_loss("nca")(LossInputs(**_pairwise()), beta=0.1)
    assert out.losses.tolist() == pytest.approx([1.319406634], abs=1e-9)
    assert out.chosen_rewards.tolist() == pytest.approx([0.2], abs=1e-12)
    assert out.rejected_rewards.shape == (1,)
    assert out.rejected_rewards.tolist() == pytest.approx([-0.1], abs=1e-12)


def test_nca_with_three_negatives_matches_hand_computed_values():
    """r_c = 0.2, r_k = (−0.1, 0.3, 0): −log σ(−r_k) = 0.644396660, 0.854355244 (= 0.3 + 0.554355244), 0.693147181;
    mean = 2.191899085 / 3 = 0.730633028.
    Loss = 0.598138869 + ½·0.798138869 + ½·0.730633028 = 0.598138869 + 0.399069435 + 0.365316514 = 1.362524818.

    If this fails, the negatives are summed instead of averaged, or (B, K) rejected tensors are mishandled.
    """
    out = get_loss("nca")(LossInputs(**_three_negatives()), beta=0.1)
    assert out.losses.shape == (1,)
    assert out.losses.tolist() == pytest.approx([1.362524818], abs=1e-9)
    assert out.rejected_rewards.shape == (1, 3)
    assert out.rejected_rewards[0].tolist() == pytest.approx([-0.1, 0.3, 0.0], abs=1e-12)


def test_infonca_with_three_negatives_matches_hand_computed_values():
    """r_c = 0.2, r_k = (−0.1, 0.3, 0): e^0.2 = 1.221402758, e^−0.1 = 0.904837418, e^0.3 = 1.349858808, e^0 = 1;
    sum = 4.476098984 → loss = log(4.476098984) − 0.2 = 1.498751905 − 0.2 = 1.298751905.

    If this fails, the chosen answer is missing from the denominator, or the softmax runs over the batch, not K.
    """
    out = get_loss("infonca")(LossInputs(**_three_negatives()), beta=0.1)
    assert out.losses.shape == (1,)
    assert out.losses.tolist() == pytest.approx([1.298751905], abs=1e-9)
    assert out.chosen_rewards.tolist() == pytest.approx([0.2], abs=1e-12)
    assert out.rejected_rewards.shape == (1, 3)


@pytest.mark.parametrize("name", ["nca", "infonca"])
def test_one_negative_as_b_by_1_equals_pairwise(name):
    """(B, 1) rejected is the pairwise case; if this fails, K=1 batches and (B,) batches train differently."""
    pairwise = get_loss(name)(LossInputs(**_pairwise()), beta=0.1)
    column = {k: v.unsqueeze(-1) if "rejected" in k else v for k, v in _pairwise().items()}
    as_matrix = get_loss(name)(LossInputs(**column), beta=0.1)
    assert as_matrix.losses.tolist() == pytest.approx(pairwise.losses.tolist(), abs=1e-12)
    assert as_matrix.rejected_rewards.shape == (1, 1)


def test_infonca_with_one_negative_is_dpo():
    """e^{r_c} / (e^{r_c} + e^{r_r}) = σ(r_c − r_r), so with K=1 InfoNCA is DPO: r_c − r_r = 0.3 → 0.554355244.
    Checked on the hand pair and on a random batch, with rejected as (B,) and as (B, 1).

    If this fails, InfoNCA is not the K-negative generalisation of DPO that the paper derives.
    """
    assert get_loss("infonca")(LossInputs(**_pairwise()), beta=0.1).losses.tolist() == pytest.approx(
        [0.554355244], abs=1e-9
    )
    g = torch.Generator().manual_seed(0)
    batch = {
        key: -torch.rand(8, generator=g, dtype=torch.float64) * 40
        for key in ("policy_chosen_logps", "ref_chosen_logps", "policy_rejected_logps", "ref_rejected_logps")
    }
    dpo = get_loss("dpo")(LossInputs(**batch), beta=0.1)
    for rejected_shape in ((8,), (8, 1)):
        shaped = {k: v.reshape(rejected_shape) if "rejected" in k else v for k, v in batch.items()}
        out = get_loss("infonca")(LossInputs(**shaped), beta=0.1)
        assert out.losses.tolist() == pytest.approx(dpo.losses.tolist(), abs=1e-12)
        assert out.rejected_rewards.flatten().tolist() == pytest.approx(dpo.rejected_rewards.tolist(), abs=1e-15)


@pytest.mark.parametrize(
    ("name", "fn", "expected"),
    [("nca", multi_negative.nca_loss, {"beta": 0.01}), ("infonca", multi_negative.infonca_loss, {"beta": 0.1})],
)
def test_defaults_are_the_documented_ones(name, fn, expected):
    """Each docstring's "β (default …)" is parsed and must equal the function's default and the registry's. If this
    fails, a default changed without its docstring (and the recipe catalogue) being updated, or the reverse."""
    assert_documented(name, fn, expected)
    assert loss_info(name).multi_negative


@pytest.mark.parametrize("name", ["nca", "infonca"])
def test_without_reference_is_a_clear_error(name):
    """Both rewards are reference-relative; treating None as 0 would silently train a reference-free objective."""
    with pytest.raises(ValueError, match="reference"):
        get_loss(name)(
            LossInputs(
                policy_chosen_logps=_t(-1.0),
                policy_rejected_logps=_t(-2.0),
                ref_chosen_logps=None,
                ref_rejected_logps=None,
            )
        )

"""rdpo, lndpo and lddpo against numbers worked out by hand."""

import math
from dataclasses import fields

import pytest
import torch

from align.losses import LossInputs, get_loss, length, loss_info, loss_names
from tests.losses.documented import assert_documented

# The per-pair shared-prefix sums lddpo reads beside the full sums.
SHARED_PREFIX_KEYS = tuple(field.name for field in fields(LossInputs) if "_shared_" in field.name)


def _t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_rdpo_matches_hand_computed_values():
    """Every row has h = (−10+12) − (−20+19) = 3; β=0.1 → β·h = 0.3; α=0.01.
    Row 1, chosen 30 tokens longer (40 vs 10): 0.3 + 0.01·30 = 0.6 → −log σ(0.6) = log(1 + e^−0.6)
        = log(1.548811636) = 0.437487950 (less than DPO's 0.554355244: length explains part of the preference).
    Row 2, chosen 30 tokens shorter: 0.3 − 0.3 = 0 → log 2 = 0.693147181 (more than DPO: a larger h is asked for).
    Row 3, equal lengths: 0.3 → 0.554355244, plain DPO. Rewards are DPO's: 0.2 and −0.1.

    If this fails, the length term has the wrong sign (which would reward verbosity) or the wrong scale.
    """
    out = get_loss("rdpo")(
        LossInputs(
            policy_chosen_logps=_t(-10.0, -10.0, -10.0),
            ref_chosen_logps=_t(-12.0, -12.0, -12.0),
            policy_rejected_logps=_t(-20.0, -20.0, -20.0),
            ref_rejected_logps=_t(-19.0, -19.0, -19.0),
            chosen_lengths=torch.tensor([40, 10, 20]),
            rejected_lengths=torch.tensor([10, 40, 20]),
        ),
        beta=0.1,
        alpha=0.01,
    )
    assert out.losses.tolist() == pytest.approx([0.437487950, math.log(2), 0.554355244], abs=1e-9)
    assert out.chosen_rewards.tolist() == pytest.approx([0.2] * 3, abs=1e-12)
    assert out.rejected_rewards.tolist() == pytest.approx([-0.1] * 3, abs=1e-12)


def test_lndpo_matches_hand_computed_values():
    """β=2. Row 1: chosen log-ratio 2 over 4 tokens = 0.5; rejected −1 over 10 tokens = −0.1; 2·(0.5 + 0.1) = 1.2
        → −log σ(1.2) = log(1 + e^−1.2) = log(1.301194212) = 0.263282467. Rewards 2·0.5 = 1.0, 2·(−0.1) = −0.2.
    Row 2: chosen ratio 3 over 30 tokens = 0.1; rejected ratio 0 → 2·0.1 = 0.2 → −log σ(0.2) = 0.598138869
        (summed h = 3 would have given DPO's 0.554355244 at β=0.1: the long answer gains less here).

    If this fails, the log-ratios are not divided by their own completion lengths (or β is applied twice).
    """
    out = get_loss("lndpo")(
        LossInputs(
            policy_chosen_logps=_t(-10.0, -30.0),
            ref_chosen_logps=_t(-12.0, -33.0),
            policy_rejected_logps=_t(-20.0, -7.0),
            ref_rejected_logps=_t(-19.0, -7.0),
            chosen_lengths=torch.tensor([4, 30]),
            rejected_lengths=torch.tensor([10, 5]),
        ),
        beta=2.0,
    )
    assert out.losses.tolist() == pytest.approx([0.263282467, 0.598138869], abs=1e-9)
    assert out.chosen_rewards.tolist() == pytest.approx([1.0, 0.2], abs=1e-12)
    assert out.rejected_rewards.tolist() == pytest.approx([-0.2, 0.0], abs=1e-12)


def _lddpo_batch():
    """Row 1: chosen is shorter (4 vs 10 tokens), so shared prefix = 4 tokens.
        chosen: π = shared = −10, ref = shared = −12 (full ratio 2; the shorter response's shared sum is its full sum)
        rejected: π = −20 (shared −8, tail −12), ref = −19 (shared −9, tail −10): shared ratio 1, tail ratio −2.
    Row 2: chosen is longer (10 vs 4 tokens).
        chosen: π = −20 (shared −8, tail −12), ref = −25 (shared −9, tail −16): shared ratio 1, tail ratio 4.
        rejected: π = shared = −10, ref = shared = −9 (ratio −1).
    """
    return {
        "policy_chosen_logps": _t(-10.0, -20.0),
        "ref_chosen_logps": _t(-12.0, -25.0),
        "policy_rejected_logps": _t(-20.0, -10.0),
        "ref_rejected_logps": _t(-19.0, -9.0),
        "policy_chosen_shared_logps": _t(-10.0, -8.0),
        "ref_chosen_shared_logps": _t(-12.0, -9.0),
        "policy_rejected_shared_logps": _t(-8.0, -10.0),
        "ref_rejected_shared_logps": _t(-9.0, -9.0),
        "chosen_lengths": torch.tensor([4, 10]),
        "rejected_lengths": torch.tensor([10, 4]),
    }


def test_lddpo_matches_hand_computed_values():
    """α=0.5, β=0.1 (batch in `_lddpo_batch`).
    Row 1: rejected (longer) π̃ = −8 + 0.5·(−12) = −14, ref̃ = −9 + 0.5·(−10) = −14 → ratio 0; chosen ratio 2
        → h̃ = 2 → −log σ(0.2) = log(1 + e^−0.2) = log(1.818730753) = 0.598138869 (DPO: h = 3 → 0.554355244).
    Row 2: chosen (longer) π̃ = −8 + 0.5·(−12) = −14, ref̃ = −9 + 0.5·(−16) = −17 → ratio 3; rejected ratio −1
        → h̃ = 4 → −log σ(0.4) = log(1.670320046) = 0.513015252 (DPO: h = 6 → 0.437487950).
    Rewards β·(π̃ − ref̃): chosen 0.2, 0.3; rejected 0, −0.1.

    If this fails, the tail is scaled on the wrong response, or only on the policy and not on the reference.
    """
    out = get_loss("lddpo")(LossInputs(**_lddpo_batch()), beta=0.1, alpha=0.5)
    assert out.losses.tolist() == pytest.approx([0.598138869, 0.513015252], abs=1e-9)
    assert out.chosen_rewards.tolist() == pytest.approx([0.2, 0.3], abs=1e-12)
    assert out.rejected_rewards.tolist() == pytest.approx([0.0, -0.1], abs=1e-12)


def test_lddpo_with_alpha_one_is_exactly_dpo():
    """α = 1 keeps every tail token at full weight. If this fails, LD-DPO's α=1 limit is not DPO bit for bit."""
    g = torch.Generator().manual_seed(0)
    batch = {
        key: -torch.rand(8, generator=g, dtype=torch.float64) * 30
        for key in ("policy_chosen_logps", "ref_chosen_logps", "policy_rejected_logps", "ref_rejected_logps")
    }
    for key in SHARED_PREFIX_KEYS:  # any prefix values: with α = 1 they must not matter
        batch[key] = -torch.rand(8, generator=g, dtype=torch.float64) * 10
    lddpo = get_loss("lddpo")(LossInputs(**batch), beta=0.1, alpha=1.0)
    dpo = get_loss("dpo")(LossInputs(**batch), beta=0.1)
    assert torch.equal(lddpo.losses, dpo.losses)
    assert torch.equal(lddpo.chosen_rewards, dpo.chosen_rewards)
    assert torch.equal(lddpo.rejected_rewards, dpo.rejected_rewards)


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_lddpo_scales_only_the_longer_responses_tail(alpha):
    """Row 1 (rejected longer): rejected ratio = shared 1 + α·tail (−2) → reward 0.1·(1 − 2α); chosen stays 0.2.
    Row 2 (chosen longer): chosen ratio = 1 + α·4 → reward 0.1·(1 + 4α); rejected stays −0.1.
    So α < 1 shrinks what the longer answer's extra tokens add to (or take from) its log-ratio, linearly.

    If this fails, the shorter response is being rescaled, or the tail is not weighted linearly by α.
    """
    out = get_loss("lddpo")(LossInputs(**_lddpo_batch()), beta=0.1, alpha=alpha)
    assert out.chosen_rewards.tolist() == pytest.approx([0.2, 0.1 * (1 + 4 * alpha)], abs=1e-12)
    assert out.rejected_rewards.tolist() == pytest.approx([0.1 * (1 - 2 * alpha), -0.1], abs=1e-12)


def test_lddpo_without_shared_prefix_logps_is_a_clear_error():
    """The standard batch lacks prefix sums; if this fails, lddpo would crash obscurely or silently become DPO."""
    batch = {k: v for k, v in _lddpo_batch().items() if k not in SHARED_PREFIX_KEYS}
    with pytest.raises(ValueError, match="shared-prefix"):
        get_loss("lddpo")(LossInputs(**batch))
    with pytest.raises(ValueError, match="ref_rejected_shared_logps"):
        get_loss("lddpo")(LossInputs(**_lddpo_batch() | {"ref_rejected_shared_logps": None}))


@pytest.mark.parametrize(
    ("name", "fn", "expected"),
    [
        ("rdpo", length.rdpo_loss, {"beta": 0.1, "alpha": 0.01}),
        ("lndpo", length.lndpo_loss, {"beta": 2.0}),
        ("lddpo", length.lddpo_loss, {"beta": 0.1, "alpha": 0.5}),
    ],
)
def test_defaults_are_the_documented_ones(name, fn, expected):
    """Each docstring's "β (default …)" / "α … (default …)" is parsed and must equal the function's defaults and the
    registry's. If this fails, a default changed without its docstring (or the reverse), or the shared-prefix keys
    (batch inputs, not hyper-parameters) leaked into the recipe catalogue."""
    assert_documented(name, fn, expected)
    assert [n for n in loss_names() if loss_info(n).needs_shared_prefix] == ["lddpo"]


@pytest.mark.parametrize("name", ["rdpo", "lndpo", "lddpo"])
def test_without_reference_is_a_clear_error(name):
    """These losses read ref log-probs; treating None as 0 would silently train a reference-free objective."""
    batch = _lddpo_batch() | {"ref_chosen_logps": None, "ref_rejected_logps": None}
    with pytest.raises(ValueError, match="reference"):
        get_loss(name)(LossInputs(**batch))

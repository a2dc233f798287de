"""`LossInputs` and the loss signature the registry enforces: a misspelt name is an error, never ignored."""

import pytest
import torch

from align.losses import LossInputs, LossOutput, LossTerm, combine_losses, get_loss, loss_names, register_loss
from tests.loss_fixtures import register_test_loss_fixture  # noqa: F401  (the `register_test_loss` fixture)


def _pair() -> LossInputs:
    return LossInputs(
        policy_chosen_logps=torch.tensor([-10.0]),
        policy_rejected_logps=torch.tensor([-20.0]),
        chosen_lengths=torch.tensor([4]),
        rejected_lengths=torch.tensor([10]),
        ref_chosen_logps=torch.tensor([-12.0]),
        ref_rejected_logps=torch.tensor([-19.0]),
    )


@pytest.mark.parametrize("name", loss_names())
def test_a_misspelt_hyper_parameter_is_a_type_error_naming_it(name):
    """Every registered loss refuses `betta=`: if this fails, a loss swallows unknown keywords (a `**_`) and a typo
    in a direct call trains with the default instead."""
    with pytest.raises(TypeError, match="betta"):
        get_loss(name)(_pair(), betta=0.5)


def test_a_misspelt_input_name_is_a_type_error_naming_it():
    """`policy_chosn_logps` is not a field: if this fails, a misspelt tensor would be dropped and the loss would run
    on whatever else it was given."""
    with pytest.raises(TypeError, match="policy_chosn_logps"):
        LossInputs(policy_chosn_logps=torch.tensor([-1.0]), policy_rejected_logps=torch.tensor([-2.0]))


def test_a_misspelt_term_parameter_is_refused_before_any_loss_runs():
    """A recipe's `{name: dpo, betta: 0.1}` stops at the term, naming the key; if this fails, combine_losses could
    be called with parameters no loss reads."""
    with pytest.raises(ValueError, match="betta"):
        combine_losses([LossTerm("dpo", params={"betta": 0.1})], _pair())


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ("def fn(inputs, *, beta=0.1, **_): ...", r"\['_'\] must be keyword-only"),
        ("def fn(inputs, *, beta): ...", r"\['beta'\] must be keyword-only hyper-parameters with defaults"),
        ("def fn(inputs, beta=0.1): ...", r"\['beta'\] must be keyword-only"),
        ("def fn(*, beta=0.1): ...", "must take its LossInputs as its first, positional parameter"),
    ],
)
def test_registration_refuses_a_signature_that_could_hide_a_typo(signature, message):
    """`**kwargs`, a hyper-parameter without a default or not keyword-only, or no `LossInputs` parameter: each is
    refused when the loss is registered, and nothing is registered. If this fails, a loss could swallow misspelt
    keywords again, or the registry would list a batch tensor as a recipe hyper-parameter."""
    namespace: dict = {}
    exec(signature, namespace)
    before = loss_names()
    with pytest.raises(ValueError, match=message):
        register_loss("test_bad_signature", needs_reference=False)(namespace["fn"])
    assert loss_names() == before


def test_a_loss_without_the_inputs_it_needs_names_them():
    """simpo without lengths, dpo without the reference: a ValueError naming what is missing. If this fails, a
    stage that did not compute an input crashes obscurely (or reads None as 0)."""
    pair = _pair()
    no_lengths = LossInputs(pair.policy_chosen_logps, pair.policy_rejected_logps)
    with pytest.raises(ValueError, match="chosen_lengths, rejected_lengths"):
        get_loss("simpo")(no_lengths)
    with pytest.raises(ValueError, match="ref_chosen_logps, ref_rejected_logps"):
        get_loss("dpo")(no_lengths)


def test_as_pairs_by_hand():
    """Two rows, K = 2: chosen (B,) repeated per negative, rejected (B, K) flattened row by row, so pair b·K + k is
    row b's k-th negative. If this fails, pairwise losses on K negatives compare answers of different prompts."""
    inputs = LossInputs(
        policy_chosen_logps=torch.tensor([-1.0, -2.0]),
        policy_rejected_logps=torch.tensor([[-11.0, -12.0], [-21.0, -22.0]]),
        chosen_lengths=torch.tensor([3, 4]),
        rejected_lengths=torch.tensor([[5, 6], [7, 8]]),
    )
    pairs = inputs.as_pairs()
    assert pairs.policy_chosen_logps.tolist() == [-1.0, -1.0, -2.0, -2.0]
    assert pairs.policy_rejected_logps.tolist() == [-11.0, -12.0, -21.0, -22.0]
    assert pairs.chosen_lengths.tolist() == [3, 3, 4, 4]
    assert pairs.rejected_lengths.tolist() == [5, 6, 7, 8]
    assert pairs.ref_chosen_logps is None and pairs.ref_rejected_logps is None


def test_a_user_loss_reads_only_the_fields_it_needs(register_test_loss):
    """The documented way to add a loss: `fn(inputs, *, hyper=default)`. Its hyper-parameters (and nothing of the
    inputs) are the registry's defaults, and combine_losses calls it. If this fails, user losses cannot register."""

    @register_test_loss("test_inputs_margin", needs_reference=False)
    def margin(inputs: LossInputs, *, gamma: float = 1.0) -> LossOutput:
        """Test loss: relu(γ − (π_c − π_r))."""
        diff = inputs.policy_chosen_logps - inputs.policy_rejected_logps
        rewards = inputs.policy_chosen_logps.detach(), inputs.policy_rejected_logps.detach()
        return LossOutput(torch.relu(gamma - diff), *rewards)

    combined = combine_losses([LossTerm("test_inputs_margin", params={"gamma": 20.0})], _pair())
    assert combined.losses.tolist() == [10.0]  # 20 − (−10 + 20)

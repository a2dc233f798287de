"""The registry's contract: names, user-registered losses, combinations, and properties every loss must have."""

import pytest
import torch

from align.losses import (
    LossInputs,
    LossOutput,
    LossTerm,
    combine_losses,
    get_loss,
    loss_info,
    loss_names,
    register_loss,
)
from align.losses.registry import unregister_loss
from tests.loss_fixtures import register_test_loss_fixture  # noqa: F401  (the `register_test_loss` fixture)
from tests.losses.documented import documented_defaults, signature_defaults


def _batch(requires_grad=False):
    g = torch.Generator().manual_seed(0)
    policy_c = (-torch.rand(4, generator=g, dtype=torch.float64) * 20).requires_grad_(requires_grad)
    policy_r = (-torch.rand(4, generator=g, dtype=torch.float64) * 20).requires_grad_(requires_grad)
    return {
        "policy_chosen_logps": policy_c,
        "policy_rejected_logps": policy_r,
        "ref_chosen_logps": -torch.rand(4, generator=g, dtype=torch.float64) * 20,
        "ref_rejected_logps": -torch.rand(4, generator=g, dtype=torch.float64) * 20,
        "chosen_lengths": torch.tensor([3, 5, 7, 9]),
        "rejected_lengths": torch.tensor([9, 7, 5, 3]),
    }


def _shared_prefix(batch):
    """Shared-prefix log-probs for losses that need them (`needs_shared_prefix`): each sum scaled to the first
    min(len_c, len_r) tokens (the shorter response keeps its full sum), a stand-in for the trainer's prefix sums."""
    shared = torch.minimum(batch["chosen_lengths"], batch["rejected_lengths"]).double()
    chosen_frac = shared / batch["chosen_lengths"].double()
    rejected_frac = shared / batch["rejected_lengths"].double()
    return {
        "policy_chosen_shared_logps": batch["policy_chosen_logps"] * chosen_frac,
        "policy_rejected_shared_logps": batch["policy_rejected_logps"] * rejected_frac,
        "ref_chosen_shared_logps": batch["ref_chosen_logps"] * chosen_frac,
        "ref_rejected_shared_logps": batch["ref_rejected_logps"] * rejected_frac,
    }


@pytest.mark.parametrize("name", loss_names())
def test_every_loss_is_finite_detached_and_differentiable(name):
    """Per-example losses (B,), rewards detached, gradients reach the policy log-probs and nothing else.

    If this fails, a loss leaks gradient into its rewards/reference or returns the wrong shape.
    """
    batch = _batch(requires_grad=True)
    if loss_info(name).needs_shared_prefix:
        batch.update(_shared_prefix(batch))
    out = get_loss(name)(LossInputs(**batch), **loss_info(name).defaults)
    assert out.losses.shape == (4,)
    assert torch.isfinite(out.losses).all()
    assert not out.chosen_rewards.requires_grad and not out.rejected_rewards.requires_grad
    out.losses.sum().backward()
    assert batch["policy_chosen_logps"].grad is not None
    assert torch.isfinite(batch["policy_chosen_logps"].grad).all()


def test_user_registered_loss_is_callable_by_name(register_test_loss):
    """Users add a loss with one decorator; if this fails, the public registration API broke."""

    @register_test_loss("test_margin_only", needs_reference=False)
    def margin(inputs, *, gamma: float = 1.0):
        """Test loss: relu(γ − (π_c − π_r))."""
        diff = inputs.policy_chosen_logps - inputs.policy_rejected_logps
        return LossOutput(
            torch.relu(gamma - diff), inputs.policy_chosen_logps.detach(), inputs.policy_rejected_logps.detach()
        )

    assert "test_margin_only" in loss_names()
    assert loss_info("test_margin_only").defaults == {"gamma": 1.0}
    assert not loss_info("test_margin_only").needs_reference
    out = get_loss("test_margin_only")(LossInputs(**_batch()), gamma=100.0)
    assert (out.losses > 0).all()
    with pytest.raises(ValueError, match="already registered"):
        register_loss("test_margin_only", needs_reference=False)(margin)


def test_unregister_loss_removes_exactly_that_loss():
    """Registering then unregistering leaves the same names as before, and the name can be registered again; an
    unknown name is a KeyError. If this fails, tests registering their own losses leak them into later tests."""
    before = loss_names()

    def once(inputs):
        """Test loss."""

    register_loss("test_unregister_me", needs_reference=False)(once)
    assert loss_names() == sorted([*before, "test_unregister_me"])
    assert unregister_loss("test_unregister_me").fn is once
    assert loss_names() == before
    register_loss("test_unregister_me", needs_reference=True)(once)
    assert loss_info("test_unregister_me").needs_reference
    unregister_loss("test_unregister_me")
    with pytest.raises(KeyError, match="test_unregister_me"):
        unregister_loss("test_unregister_me")
    assert loss_names() == before


def test_unknown_loss_lists_the_known_ones():
    with pytest.raises(KeyError, match="dpo"):
        get_loss("dpoo")


def test_combination_is_the_weighted_sum_with_components():
    """dpo + 0.5·sft equals the hand-made sum; components report each term. If not, weights are misapplied."""
    batch = _batch()
    dpo = get_loss("dpo")(LossInputs(**batch), beta=0.1).losses
    sft = get_loss("sft")(LossInputs(**batch)).losses
    combined = combine_losses([LossTerm("dpo", 1.0, {"beta": 0.1}), LossTerm("sft", 0.5)], LossInputs(**batch))
    assert torch.allclose(combined.losses, dpo + 0.5 * sft)
    assert set(combined.components) == {"dpo", "sft"}
    assert combined.components["sft"].item() == pytest.approx(sft.mean().item())


def test_loss_term_rejects_unknown_parameters():
    with pytest.raises(ValueError, match="beta"):
        LossTerm("dpo", params={"betta": 0.1})


def test_pairwise_losses_see_k_negatives_as_k_pairs():
    """dpo on K = 2 negatives is the mean of the two pairwise dpo losses; rewards keep the (B, K) shape.

    Row: π_c=-10, ref_c=-12 (log-ratio 2); negatives log-ratios −1 and +1 → h = 3 and 1, β = 1:
    −log σ(3) = 0.048587352, −log σ(1) = 0.313261687 → mean 0.180924520.
    """
    combined = combine_losses(
        [LossTerm("dpo", params={"beta": 1.0})],
        LossInputs(
            policy_chosen_logps=torch.tensor([-10.0], dtype=torch.float64),
            policy_rejected_logps=torch.tensor([[-20.0, -18.0]], dtype=torch.float64),
            ref_chosen_logps=torch.tensor([-12.0], dtype=torch.float64),
            ref_rejected_logps=torch.tensor([[-19.0, -19.0]], dtype=torch.float64),
            chosen_lengths=torch.tensor([5]),
            rejected_lengths=torch.tensor([[9, 9]]),
        ),
    )
    assert combined.losses.tolist() == pytest.approx([0.180924520], abs=1e-9)
    assert combined.chosen_rewards.tolist() == pytest.approx([2.0])
    assert combined.rejected_rewards[0].tolist() == pytest.approx([-1.0, 1.0])


def test_documented_defaults_reads_symbols_ranges_and_names():
    """The docstring reader on text worked by hand: β and α by symbol (α with its range), ε after its keyword name;
    prose mentioning a symbol without "(default" is not a default. If this fails, the per-family
    `test_defaults_are_the_documented_ones` tests compare against a misread docstring."""

    def loss(inputs, *, beta: float = 0.3, alpha: float = 0.25, label_smoothing: float = 0.05):
        """Made up: −log σ(β·h + α·d).

        The logit gains α·d and β scales h. β (default 0.3): the temperature. α in [0, 1] (default 0.25, small):
        the length weight. label_smoothing ε (default 0.05).
        """

    def twice(inputs, *, beta: float = 0.1):
        """β (default 0.1). Later: β (default 0.2)."""

    assert documented_defaults(loss) == {"beta": 0.3, "alpha": 0.25, "label_smoothing": 0.05}
    assert signature_defaults(loss) == {"beta": 0.3, "alpha": 0.25, "label_smoothing": 0.05}
    with pytest.raises(AssertionError, match="documented twice"):
        documented_defaults(twice)


@pytest.mark.parametrize("name", loss_names())
def test_every_loss_documents_its_defaults(name):
    """dpo, sft and every family: the defaults the docstring states are the ones the function and the registry
    have (sft: none stated, none had). If this fails, `--explain loss` and the docstring disagree."""
    fn = get_loss(name)
    assert documented_defaults(fn) == signature_defaults(fn) == loss_info(name).defaults


def _pair_batch():
    return dict(
        policy_chosen_logps=torch.tensor([-2.0, -4.0]),
        policy_rejected_logps=torch.tensor([-3.0, -1.0]),
        ref_chosen_logps=torch.tensor([-2.5, -4.0]),
        ref_rejected_logps=torch.tensor([-2.5, -2.0]),
        chosen_lengths=torch.tensor([2, 4]),
        rejected_lengths=torch.tensor([3, 1]),
    )


def test_rewards_come_from_the_preference_term_whatever_the_list_order():
    """`[sft, dpo]` reports DPO's implicit rewards β·(π − ref), not the SFT term's mean log-probs: by hand, chosen
    0.1·(−2 + 2.5) = 0.05 and 0.1·0 = 0; rejected 0.1·(−3 + 2.5) = −0.05 and 0.1·(−1 + 2) = 0.1. If this fails,
    `rewards/accuracies` and the min_pair_accuracy gate measure the SFT term when it is listed first."""
    combined = combine_losses([LossTerm("sft", 0.5), LossTerm("dpo", 1.0, {"beta": 0.1})], LossInputs(**_pair_batch()))
    assert combined.chosen_rewards.tolist() == pytest.approx([0.05, 0.0])
    assert combined.rejected_rewards.tolist() == pytest.approx([-0.05, 0.1])


def test_several_reward_terms_need_one_marked():
    """Two terms that both give preference rewards: which is reported must be said (`rewards: true`), else a
    one-line error; marked, the marked term's rewards (IPO's are β·log-ratio too: β 0.2 → chosen 0.2·0.5 = 0.1)."""
    from align.losses import reward_term

    with pytest.raises(ValueError, match="terms dpo, ipo all give preference rewards"):
        reward_term([LossTerm("dpo"), LossTerm("ipo")])
    with pytest.raises(ValueError, match="only one loss term"):
        reward_term([LossTerm("dpo", rewards=True), LossTerm("ipo", rewards=True)])
    terms = [LossTerm("dpo", 1.0, {"beta": 0.1}), LossTerm("ipo", 1.0, {"beta": 0.2}, rewards=True)]
    assert reward_term(terms) == 1
    combined = combine_losses(terms, LossInputs(**_pair_batch()))
    assert combined.chosen_rewards.tolist() == pytest.approx([0.1, 0.0])
    assert reward_term([LossTerm("sft")]) == 0


def test_term_conflicts_are_worked_out_from_registry_capabilities():
    """One check for every caller (validate, plan, train, the trainer): dpo with `reference: none` is refused and
    the message lists the reference-free losses from the registry; lddpo refuses cached reference sums and K = 3
    rejected answers (it reads shared-prefix sums of one pair); simpo with `reference: none` and K = 3 is fine
    (K negatives become K pairs). If this fails, a stage trains on missing inputs or is refused for nothing."""
    from align.losses import StageFacts, term_conflicts

    (conflict,) = term_conflicts([LossTerm("dpo")], StageFacts(reference="none"))
    assert conflict.key == ("reference",)
    assert conflict.message.endswith("use base or previous, or a reference-free loss (cpo, orpo, simpo)")
    conflicts = term_conflicts([LossTerm("lddpo")], StageFacts(precompute_ref_log_probs=True, rejected_per_prompt=3))
    assert [c.key for c in conflicts] == [("training", "precompute_ref_log_probs"), ("data",)]
    assert "the rows have 3 rejected answers" in conflicts[1].message
    assert term_conflicts([LossTerm("simpo")], StageFacts(reference="none", rejected_per_prompt=3)) == []
    assert term_conflicts([LossTerm("lddpo")], StageFacts(rejected_per_prompt=1)) == []


def test_parameter_ranges_live_on_the_registry_entry():
    """β of every loss that has one is in (0, ∞) (0 learns nothing, < 0 trains towards the rejected answers);
    lddpo's α is in [0, 1]; robust's label smoothing in [0, 0.5) (0.5 inverts the label). Ends worked by hand. If
    this fails, a recipe can set a value that trains nothing or trains backwards."""
    from align.losses import Interval

    with_beta = [name for name in loss_names() if "beta" in loss_info(name).defaults]
    assert with_beta and all(str(loss_info(name).ranges["beta"]) == "(0, inf)" for name in with_beta)
    assert 1e-9 in loss_info("dpo").ranges["beta"] and 0.0 not in loss_info("dpo").ranges["beta"]
    alpha = loss_info("lddpo").ranges["alpha"]
    assert (0.0 in alpha, 1.0 in alpha, 1.01 in alpha, str(alpha)) == (True, True, False, "[0, 1]")
    smoothing = loss_info("robust").ranges["label_smoothing"]
    assert (0.0 in smoothing, 0.49 in smoothing, 0.5 in smoothing, str(smoothing)) == (True, True, False, "[0, 0.5)")
    with pytest.raises(ValueError, match="ranges for parameters it does not have"):
        register_loss("bad_range", needs_reference=False, ranges={"zeta": Interval()})(get_loss("simpo"))

"""The conformance matrix: for every model family (tests/training/conformance.py) and every layout align would choose
for it, align's completion log-probs and LoRA gradients equal plain Hugging Face forward passes of each sequence run
on its own, and one DPO step equals stock trl's `DPOTrainer` on the same batch.

The reference is independent of align's code: a separate copy of the model, its own forward, full logits, one
sequence at a time, autograd. If a row fails, align trains that family on wrong log-probs.
"""

from __future__ import annotations

import copy

import pytest
import torch

from align.errors import AlignError
from align.training.families import router_aux_loss_coef
from align.training.layout import choose_layout
from align.training.logprobs import add_completion_logps
from align.training.packed_batch import PackedBatch
from align.training.packing import PackedPreferenceCollator
from align.training.segment_attention import use_segment_attention
from tests.training.conformance import (
    FAMILIES,
    VOCAB,
    align_logps,
    build_family,
    lora,
    plain_logps,
    tokenised_rows,
    trl_sequences,
)

# Which layout align picks for each family (asserted, so a change to the allow-list shows here).
EXPECTED_LAYOUT = {name: "packed" for name in FAMILIES} | {"mixtral-router-loss": "padded", "lfm2-hybrid": "padded"}


def _layouts(name: str) -> list[str]:
    return sorted({EXPECTED_LAYOUT[name], "padded"})


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("name", list(FAMILIES))
def test_completion_logps_and_lora_gradients_equal_plain_forward(name, k):
    """Per sequence, align's completion log-probs (each layout it would use, and padded) equal the family's own
    forward run on that sequence alone within 1e-5, and so does every LoRA gradient of a weighted sum of them.
    K = 3 rejected answers per row exercises the further-answer attention calls."""
    rows = tokenised_rows(k)
    sequences = trl_sequences(rows)
    weights = torch.linspace(-1.0, 1.5, len(sequences))
    reference = lora(build_family(name, VOCAB))
    expected = plain_logps(reference, sequences)
    (expected * weights).sum().backward()
    for layout in _layouts(name):
        policy = lora(build_family(name, VOCAB))
        got = align_logps(policy, rows, layout)
        difference = (got - expected).abs().max().item()
        assert difference < 1e-5, f"{name} {layout}: log-probs off by {difference:.2e}"
        (got * weights).sum().backward()
        for (param_name, p), (_, q) in zip(policy.named_parameters(), reference.named_parameters(), strict=True):
            if q.requires_grad:
                assert p.grad is not None, f"{name} {layout}: no gradient for {param_name}"
                gap = (p.grad - q.grad).abs().max().item()
                assert gap < 1e-5, f"{name} {layout}: gradient of {param_name} off by {gap:.2e}"


@pytest.mark.parametrize("name", list(FAMILIES))
def test_layout_choice_is_the_allow_listed_one(name):
    """align packs exactly the families proven exact above and says why it does not pack the others."""
    model = build_family(name, VOCAB)
    choice = choose_layout(model, "packed", router_aux_loss_coef(model, None))
    assert choice.batch_layout == EXPECTED_LAYOUT[name]
    assert (choice.why is None) == (choice.batch_layout == "packed")
    assert choice.log_probs == "completion-only head"


def test_guard_stops_a_packed_forward_through_a_token_mixing_layer():
    """Forcing the packed layout on a hybrid model (one convolution layer, one attention layer), past the allow-list:
    the packed forward stops with one line instead of returning log-probs mixed across answers."""
    policy = build_family("lfm2-hybrid", VOCAB)
    add_completion_logps(policy)
    use_segment_attention(policy)
    packed = PackedBatch.from_inputs(PackedPreferenceCollator()(tokenised_rows()))
    with pytest.raises(AlignError, match="1 of 2 attention layers ran through align's segment attention"):
        policy(input_ids=packed.input_ids, position_ids=packed.position_ids, completion_logps=True, packed=packed)


def test_guard_stops_a_layer_that_drops_the_segment_layout(monkeypatch):
    """A layer that stops forwarding align's segment layout to its attention (as a future transformers release
    could) must not run SDPA over the whole packed row with the placeholder mask: one-line error instead."""
    from transformers.models.llama import modeling_llama

    policy = build_family("llama", VOCAB)
    add_completion_logps(policy)
    use_segment_attention(policy)
    layer_forward = modeling_llama.LlamaAttention.forward

    def dropping_forward(self, *args, **kwargs):
        kwargs.pop("pair_segments", None)
        return layer_forward(self, *args, **kwargs)

    monkeypatch.setattr(modeling_llama.LlamaAttention, "forward", dropping_forward)
    packed = PackedBatch.from_inputs(PackedPreferenceCollator()(tokenised_rows()))
    with pytest.raises(AlignError, match="did not pass align's segment layout"):
        policy(input_ids=packed.input_ids, position_ids=packed.position_ids, completion_logps=True, packed=packed)


def _nudge_trained_adapter(model) -> None:
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            if "lora_B" in name and ".default." in name:
                parameter.add_(0.2 * torch.randn(parameter.shape, generator=generator))


def _dpo_step(trainer, rows: int = 4) -> tuple[float, float]:
    """Loss and LoRA gradient norm of one training step on the trainer's first `rows` rows (its own collator)."""
    batch = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i] for i in range(rows)]))
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    squares = [p.grad.pow(2).sum() for p in trainer.model.parameters() if p.grad is not None]
    return loss.item(), torch.stack(squares).sum().sqrt().item()


@pytest.mark.parametrize("name", list(FAMILIES))
def test_one_dpo_step_equals_stock_trl(name, tiny_model_dir, tmp_path):
    """One DPO step (β 0.1, sigmoid loss, 4 shipped pairs) through align's trainer, in the layout it picks, and
    through stock trl `DPOTrainer` on the same LoRA weights: loss and gradient norm within 1e-4 (the MoE row includes
    the router load-balancing loss trl adds)."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from align.data import load_preference_rows
    from align.losses import LossTerm
    from align.models import load_tokenizer
    from align.recipe.trl_configs import make_trainer_config
    from align.training.trainer import ContrastiveTrainer
    from tests.conftest import REPO

    tokenizer = load_tokenizer(str(tiny_model_dir))
    pairs = load_preference_rows(REPO / "data" / "concise" / "train.jsonl")[:4]
    dataset = Dataset.from_list([row.to_conversational() for row in pairs])
    policy = lora(build_family(name, len(tokenizer)))
    stock_model = copy.deepcopy(policy)
    settings = {"per_device_train_batch_size": 4, "max_length": 160, "gradient_checkpointing": False}
    stock = DPOTrainer(
        model=stock_model,
        args=DPOConfig(
            output_dir=str(tmp_path / "trl"),
            report_to="none",
            use_cpu=True,
            bf16=False,
            beta=0.1,
            loss_type=["sigmoid"],
            **settings,
        ),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    ours = ContrastiveTrainer(
        model=policy,
        args=make_trainer_config("preference", settings, output_dir=str(tmp_path / "align"), seed=0, report_to="none"),
        train_dataset=dataset,
        processing_class=tokenizer,
        loss_terms=[LossTerm("dpo", 1.0, {"beta": 0.1})],
    )
    assert ours.batch_layout == EXPECTED_LAYOUT[name]
    # Both trainers keep a frozen copy of the given adapter as the reference: move the trained adapter away from it
    # (identically in both) so the step's log-ratios, not only their gradients, are non-zero.
    for trainer in (stock, ours):
        _nudge_trained_adapter(trainer.model)
    (stock_loss, stock_norm), (loss, norm) = _dpo_step(stock), _dpo_step(ours)
    assert abs(stock_loss - 0.6931) > 1e-3, "the policy should differ from its reference"
    assert loss == pytest.approx(stock_loss, abs=1e-4), f"{name}: loss {loss} vs trl {stock_loss}"
    assert norm == pytest.approx(stock_norm, abs=1e-4, rel=1e-4), f"{name}: gradient norm {norm} vs trl {stock_norm}"


def test_a_family_off_the_allow_list_trains_padded_on_full_logits_and_stays_exact(monkeypatch):
    """A model type align has not proven (here Llama taken off the list) gets the padded layout and log-probs from
    the model's own full logits: it says so, and log-probs and every LoRA gradient still equal the plain forward
    within 1e-5. If this fails, unlisted families are either refused outright or trained through the unproven path."""
    from align.training import families

    monkeypatch.delitem(families.FAMILIES, "llama")
    model = build_family("llama", VOCAB)
    choice = choose_layout(model, "packed")
    assert (choice.batch_layout, choice.log_probs) == ("padded", "full logits")
    assert "not on align's list" in choice.why
    rows = tokenised_rows(3)
    sequences = trl_sequences(rows)
    weights = torch.linspace(-1.0, 1.5, len(sequences))
    reference = lora(build_family("llama", VOCAB))
    expected = plain_logps(reference, sequences)
    (expected * weights).sum().backward()
    policy = lora(build_family("llama", VOCAB))
    got = align_logps(policy, rows, "padded")
    assert (got - expected).abs().max().item() < 1e-5
    (got * weights).sum().backward()
    for (param_name, p), (_, q) in zip(policy.named_parameters(), reference.named_parameters(), strict=True):
        if q.requires_grad:
            assert (p.grad - q.grad).abs().max().item() < 1e-5, param_name

"""`FastSftTrainer` (align/training/sft_trainer.py) against stock trl `SFTTrainer` on the same batches.

The reference is independent of align's code: stock `SFTTrainer`, its own collator (padded rows), its own loss (trl's
fused head over every labelled position), on a copy of the same LoRA model. The test families are tiny random
models of the conformance matrix (`tests/training/conformance.py`).
"""

from __future__ import annotations

import copy
import logging

import pytest
import torch

from tests.training.conformance import build_family, lora

FAMILIES = ("llama", "qwen2", "mistral-window", "gemma2-softcap-window")


def _dataset(rows: int):
    from datasets import Dataset

    from align.data import load_completion_rows
    from tests.conftest import REPO

    sft_rows = load_completion_rows(REPO / "data" / "concise" / "sft.jsonl")[:rows]
    return Dataset.from_list([row.to_conversational() for row in sft_rows])


def _config(tmp_path, name: str, **overrides):
    from trl import SFTConfig

    settings = dict(
        output_dir=str(tmp_path / name),
        report_to="none",
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=4,
        max_length=160,  # shorter than some rows: trl's truncation is part of what must match
        gradient_checkpointing=False,
    )
    return SFTConfig(**(settings | overrides))


def _trainers(name, tiny_model_dir, tmp_path, rows=8, micro_batch_tokens=None, batch_layout="packed", **overrides):
    """(stock trl SFTTrainer, FastSftTrainer) on the same `rows` shipped SFT rows and the same LoRA weights."""
    from trl import SFTTrainer

    from align.models import load_tokenizer
    from align.training.sft_trainer import FastSftTrainer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    dataset = _dataset(rows)
    policy = lora(build_family(name, len(tokenizer)))
    stock_model = copy.deepcopy(policy)
    stock = SFTTrainer(
        model=stock_model,
        args=_config(tmp_path, "trl", **overrides),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    ours = FastSftTrainer(
        model=policy,
        args=_config(tmp_path, "align", **overrides),
        train_dataset=dataset,
        processing_class=copy.deepcopy(tokenizer),
        micro_batch_tokens=micro_batch_tokens,
        batch_layout=batch_layout,
    )
    return stock, ours


def _steps(trainer, batches: list[list[int]]) -> tuple[float, dict[str, torch.Tensor]]:
    """The summed loss and the LoRA gradients of one optimizer step over `batches` (row indices per batch): each
    batch through the trainer's own collator and `training_step`, the token count over all of them as transformers
    computes it for gradient accumulation."""
    collated = [trainer.data_collator([trainer.train_dataset[i] for i in rows]) for rows in batches]
    collated = [trainer._prepare_inputs(batch) for batch in collated]
    count = trainer._get_num_items_in_batch(collated, trainer.args.device)
    trainer.model.train()
    trainer.model.zero_grad()
    loss = sum(trainer.training_step(trainer.model, batch, count).item() for batch in collated)
    grads = {name: p.grad.clone() for name, p in trainer.model.named_parameters() if p.requires_grad}
    return loss, grads


def _assert_equal_steps(stock, ours, batches, label: str) -> None:
    stock_loss, stock_grads = _steps(stock, batches)
    loss, grads = _steps(ours, batches)
    assert stock_loss > 0.1, "a random model's NLL should be far from zero"
    assert abs(loss - stock_loss) < 1e-5, f"{label}: loss {loss} vs trl {stock_loss}"
    assert grads.keys() == stock_grads.keys() and len(grads) > 0
    for param, expected in stock_grads.items():
        assert expected.abs().max() > 0, f"{label}: {param} got no gradient from trl"
        error = (grads[param] - expected).abs().max().item()
        assert error < 1e-5, f"{label}: {param} gradient off by {error}"


@pytest.mark.parametrize("name", FAMILIES)
def test_a_step_equals_stock_sft_trainer(name, tiny_model_dir, tmp_path):
    """Two batches of 4 shipped SFT rows (different lengths, some truncated) as one optimizer step with gradient
    accumulation: the packed trainer's loss and every LoRA gradient equal stock trl `SFTTrainer`'s within 1e-5
    (fp32). If this fails, the packed layout, the completion-only head or the token normalisation differs from
    trl's SFT loss."""
    stock, ours = _trainers(name, tiny_model_dir, tmp_path)
    assert (ours.layout.batch_layout, ours.layout.log_probs) == ("packed", "completion-only head")
    first = ours.data_collator([ours.train_dataset[i] for i in range(4)])
    lengths = first["segment_lengths"].tolist()
    assert len(set(lengths)) > 1, "rows of different lengths are what padding differs on"
    _assert_equal_steps(stock, ours, [[0, 1, 2, 3], [4, 5, 6, 7]], name)


@pytest.mark.parametrize("name", ("llama", "qwen2", "gemma2-softcap-window"))
def test_micro_batches_equal_the_whole_batch(name, tiny_model_dir, tmp_path):
    """A batch of 8 rows split by `micro_batch_tokens` into several passes: loss and LoRA gradients still equal stock
    `SFTTrainer`'s on the whole batch within 1e-5, with the token count given (gradient accumulation) and without it.
    If this fails, the parts are normalised by their own token counts instead of the batch's."""
    stock, ours = _trainers(name, tiny_model_dir, tmp_path, micro_batch_tokens=400, per_device_train_batch_size=8)
    batch = ours._prepare_inputs(ours.data_collator([ours.train_dataset[i] for i in range(8)]))
    assert len(ours._micro_batches(batch)) >= 3
    _assert_equal_steps(stock, ours, [list(range(8))], name)
    # Without transformers' count (models that take no loss kwargs), each part divides by the whole batch's count.
    for trainer in (stock, ours):
        trainer._get_num_items_in_batch = lambda batches, device: None
        trainer.current_gradient_accumulation_steps = 1  # what `train` sets before its first step
    _assert_equal_steps(stock, ours, [list(range(8))], f"{name} without a count")


def test_a_family_off_the_allow_list_is_stock_sft_trainer(tiny_model_dir, tmp_path, monkeypatch, caplog):
    """A model type align has not proven packable (Llama taken off the list) gets stock `SFTTrainer` in the padded
    layout: trl's collator and loss, one log line saying why, the layout recorded, and the step equal to stock. If
    this fails, unproven families run the packed path or are refused instead of falling back."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from align.training import families

    monkeypatch.delitem(families.FAMILIES, "llama")
    with caplog.at_level(logging.WARNING, logger="align.training.sft_trainer"):
        stock, ours = _trainers("llama", tiny_model_dir, tmp_path, rows=4)
    assert (ours.layout.batch_layout, ours.layout.log_probs) == ("padded", "trl SFTTrainer")
    assert "not on align's list" in ours.layout.why
    assert sum("packed SFT batches are off" in record.getMessage() for record in caplog.records) == 1
    assert isinstance(ours.data_collator, DataCollatorForLanguageModeling)
    _assert_equal_steps(stock, ours, [[0, 1, 2, 3]], "fallback")


@pytest.mark.parametrize(
    ("overrides", "why"),
    (({"loss_type": "dft"}, "loss_type 'dft'"), ({"label_smoothing_factor": 0.1}, "label smoothing")),
)
def test_settings_the_packed_path_cannot_reproduce_fall_back(overrides, why, tiny_model_dir, tmp_path):
    """trl settings the packed loss does not compute (DFT weighting, label smoothing) give the padded layout with the
    reason recorded, and trl's own loss. If this fails, such a stage would silently train on the plain NLL."""
    _, ours = _trainers("llama", tiny_model_dir, tmp_path, rows=4, **overrides)
    assert ours.layout.batch_layout == "padded" and why in ours.layout.why
    assert "target_index" not in ours.data_collator([ours.train_dataset[i] for i in range(2)])


def test_num_tokens_counts_real_tokens_as_trl_does(tiny_model_dir, tmp_path):
    """The `num_tokens` metric after a step equals stock trl's (real tokens, no padding). If this fails, the packed
    trainer logs a token count that does not match what trl would report for the same data."""
    from align.training.private_api import metrics_store

    stock, ours = _trainers("llama", tiny_model_dir, tmp_path, rows=4)
    for trainer in (stock, ours):
        _steps(trainer, [[0, 1, 2, 3]])
    assert metrics_store(ours, "train")["num_tokens"] == metrics_store(stock, "train")["num_tokens"]
    assert metrics_store(ours, "train")["num_tokens"][0] > 0


def test_the_padded_layout_is_stock_sft_trainer(tiny_model_dir, tmp_path):
    """`batch_layout: padded` asked for: trl's collator and loss, recorded as stock with no reason, and the step equal
    to stock's; micro-batches are refused there. If this fails, a stage asking for trl's own layout does not get it."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from align.training.sft_trainer import FastSftTrainer

    stock, ours = _trainers("qwen2", tiny_model_dir, tmp_path, rows=4, batch_layout="padded")
    assert ours.layout.as_summary() == {"batch_layout": "padded", "why": None, "log_probs": "trl SFTTrainer"}
    assert isinstance(ours.data_collator, DataCollatorForLanguageModeling)
    _assert_equal_steps(stock, ours, [[0, 1, 2, 3]], "padded")
    with pytest.raises(ValueError, match="micro_batch_tokens needs batch_layout packed"):
        FastSftTrainer(model=ours.model, args=ours.args, batch_layout="padded", micro_batch_tokens=64)

"""What `ContrastiveTrainer` does with a batch layout it cannot use: refuse at start, or fall back to padded."""

import pytest

from align.models import load_model

SMALL = {"per_device_train_batch_size": 2, "max_length": 128}


def test_micro_batches_are_refused_under_deepspeed(tiny_trainer, monkeypatch):
    """DeepSpeed's engine steps the optimizer at every backward, so splitting a batch into several backward passes
    would take several optimizer steps: refused at start with a one-line error. If this fails, a DeepSpeed run with
    micro_batch_tokens silently trains with the wrong step count."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedType

    from align.errors import AlignError

    monkeypatch.setattr(Accelerator, "distributed_type", property(lambda self: DistributedType.DEEPSPEED))
    with pytest.raises(AlignError, match="micro_batch_tokens cannot split batches under DeepSpeed"):
        tiny_trainer(4, SMALL, micro_batch_tokens=64)


def test_model_without_attention_interface_falls_back_to_padded(tiny_trainer, tiny_model_dir, caplog):
    """A model whose attention bypasses transformers' AttentionInterface cannot take packed batches: the trainer
    warns and uses trl's padded layout instead of crashing mid-step. If this fails, such models cannot be trained."""
    from align.training.multi_negative import MultiNegativeCollator

    model = load_model(str(tiny_model_dir), dtype="float32")
    model._supports_attention_backend = False
    trainer = tiny_trainer(4, SMALL, model=model, micro_batch_tokens=64)
    assert trainer.batch_layout == "padded" and trainer.micro_batch_tokens is None
    assert isinstance(trainer.data_collator, MultiNegativeCollator)
    assert "packed batches are off" in caplog.text and "AttentionInterface" in trainer.layout.why

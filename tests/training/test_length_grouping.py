"""Length-grouped batching (`train_sampling_strategy: group_by_length`) works with align's trainer and cuts padding."""

import pytest
from datasets import Dataset

from align.data import load_preference_rows
from align.losses import LossTerm
from align.models import load_model, load_tokenizer
from align.recipe.passthrough import make_lora_config, make_trainer_config
from align.training.trainer import ContrastiveTrainer
from tests.integration.test_layouts import REPO


def _padding(tiny_model_dir, tmp_path, sampling: str) -> float:
    rows = load_preference_rows(REPO / "data" / "concise" / "train.jsonl")[:64]
    tokenizer = load_tokenizer(str(tiny_model_dir))
    config = make_trainer_config("preference", {"per_device_train_batch_size": 8, "max_length": 512,
                                                "train_sampling_strategy": sampling},
                                 output_dir=str(tmp_path / sampling), seed=0, report_to="none")  # fmt: skip
    trainer = ContrastiveTrainer(
        model=load_model(str(tiny_model_dir), dtype="float32"),
        args=config,
        train_dataset=Dataset.from_list([row.to_conversational() for row in rows]),
        processing_class=tokenizer,
        peft_config=make_lora_config({"r": 4, "target_modules": "all-linear"}),
        loss_terms=[LossTerm("dpo", 1.0, {"beta": 0.1})],
        batch_layout="padded",
    )
    if sampling == "group_by_length":
        assert "length" in trainer.train_dataset.column_names
    real = padded = 0
    for batch in trainer.get_train_dataloader():
        real += int(batch["attention_mask"].sum())
        padded += batch["attention_mask"].numel()
    return padded / real


@pytest.mark.slow
def test_group_by_length_cuts_padding(tiny_model_dir, tmp_path):
    """Same 64 rows, batches of 8, trl's padded layout: grouping rows of similar length must pad less than random
    order (on this data 1.3+ padded tokens per real token at random). If this fails, `group_by_length` is silently
    ignored (e.g. the sampler found no lengths) and padded stages waste compute."""
    random_order = _padding(tiny_model_dir, tmp_path, "random")
    grouped = _padding(tiny_model_dir, tmp_path, "group_by_length")
    assert grouped < random_order - 0.1, (grouped, random_order)


def test_micro_batches_are_refused_under_deepspeed(tiny_model_dir, tmp_path, monkeypatch):
    """DeepSpeed's engine steps the optimizer at every backward, so splitting a batch into several backward passes
    would take several optimizer steps: refused at start with a one-line error. If this fails, a DeepSpeed run with
    micro_batch_tokens silently trains with the wrong step count."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedType

    from align.errors import AlignError

    monkeypatch.setattr(Accelerator, "distributed_type", property(lambda self: DistributedType.DEEPSPEED))
    rows = load_preference_rows(REPO / "data" / "concise" / "train.jsonl")[:4]
    config = make_trainer_config("preference", {"per_device_train_batch_size": 2, "max_length": 128},
                                 output_dir=str(tmp_path), seed=0, report_to="none")  # fmt: skip
    with pytest.raises(AlignError, match="micro_batch_tokens cannot split batches under DeepSpeed"):
        ContrastiveTrainer(
            model=load_model(str(tiny_model_dir), dtype="float32"),
            args=config,
            train_dataset=Dataset.from_list([row.to_conversational() for row in rows]),
            processing_class=load_tokenizer(str(tiny_model_dir)),
            peft_config=make_lora_config({"r": 4, "target_modules": "all-linear"}),
            loss_terms=[LossTerm("dpo", 1.0, {"beta": 0.1})],
            micro_batch_tokens=64,
        )


def test_model_without_attention_interface_falls_back_to_padded(tiny_model_dir, tmp_path, caplog):
    """A model whose attention bypasses transformers' AttentionInterface cannot take packed batches: the trainer
    warns and uses trl's padded layout instead of crashing mid-step. If this fails, such models cannot be trained."""
    from align.training.multi_negative import MultiNegativeCollator

    model = load_model(str(tiny_model_dir), dtype="float32")
    model._supports_attention_backend = False
    rows = load_preference_rows(REPO / "data" / "concise" / "train.jsonl")[:4]
    config = make_trainer_config("preference", {"per_device_train_batch_size": 2, "max_length": 128},
                                 output_dir=str(tmp_path), seed=0, report_to="none")  # fmt: skip
    trainer = ContrastiveTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list([row.to_conversational() for row in rows]),
        processing_class=load_tokenizer(str(tiny_model_dir)),
        peft_config=make_lora_config({"r": 4, "target_modules": "all-linear"}),
        loss_terms=[LossTerm("dpo", 1.0, {"beta": 0.1})],
        micro_batch_tokens=64,
    )
    assert trainer.batch_layout == "padded" and trainer.micro_batch_tokens is None
    assert isinstance(trainer.data_collator, MultiNegativeCollator)
    assert "cannot run packed batches" in caplog.text

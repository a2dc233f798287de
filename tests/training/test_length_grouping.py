"""Length-grouped batching (`train_sampling_strategy: group_by_length`) works with align's trainer and cuts padding."""

import pytest


def _padding(tiny_trainer, sampling: str) -> float:
    training = {"per_device_train_batch_size": 8, "max_length": 512, "train_sampling_strategy": sampling}
    trainer = tiny_trainer(64, training, batch_layout="padded")
    if sampling == "group_by_length":
        assert "length" in trainer.train_dataset.column_names
    real = padded = 0
    for batch in trainer.get_train_dataloader():
        real += int(batch["attention_mask"].sum())
        padded += batch["attention_mask"].numel()
    return padded / real


@pytest.mark.slow
def test_group_by_length_cuts_padding(tiny_trainer):
    """Same 64 rows, batches of 8, trl's padded layout: grouping rows of similar length must pad less than random
    order (on this data 1.3+ padded tokens per real token at random). If this fails, `group_by_length` is silently
    ignored (e.g. the sampler found no lengths) and padded stages waste compute."""
    random_order = _padding(tiny_trainer, "random")
    grouped = _padding(tiny_trainer, "group_by_length")
    assert grouped < random_order - 0.1, (grouped, random_order)

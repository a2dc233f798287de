"""Tiny scorers for the scorer tests: a random sequence-classification Llama saved to a folder, and fake scorers
whose scores are fixed per answer text (for hand-worked numbers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from align.scorers import SCORERS, ScoreItem, Scorer

CORPUS = [
    "How do I hard-boil eggs? Bring water to a rolling boil, boil the eggs 11 minutes, then an ice bath.",
    "Use `ls -la` to list every file. Run `git stash` before you switch branches.",
]


def build_reward_model(
    target: Path, num_labels: int = 1, chat_template: bool = True, pad_token: bool = True, seed: int = 0
) -> Path:
    """A randomly initialised LlamaForSequenceClassification (hidden 32, 2 layers) with `num_labels` outputs and a
    local byte-level tokenizer (ChatML template unless `chat_template` is False; no pad token if `pad_token` is
    False), saved to `target`."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from align.models.tiny import train_tokenizer

    tokenizer = train_tokenizer(CORPUS, vocab_size=300)
    if not chat_template:
        tokenizer.chat_template = None
    if not pad_token:
        tokenizer.pad_token = None
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        num_labels=num_labels,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForSequenceClassification(config)
    # The score head starts at zero-mean small weights; scale it so rewards differ visibly between answers.
    with torch.no_grad():
        model.score.weight.mul_(50.0)
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    return target


@pytest.fixture(scope="session")
def reward_model_dir(tmp_path_factory) -> Path:
    """One tiny reward model (ChatML template, with a pad token) per test session."""
    return build_reward_model(tmp_path_factory.mktemp("reward") / "model")


def fake_scorer(name: str, table: dict[str, float]) -> type[Scorer]:
    """A scorer class named `name` whose score of an answer is `table[answer]`."""

    class Fake(Scorer):
        description = f"fixed scores ({name})"
        units = "test units"

        def __init__(self, settings=None):
            del settings

        def score(self, items: list[ScoreItem]) -> list[float]:
            return [table[item.answer] for item in items]

    Fake.name = name
    return Fake


@pytest.fixture
def register_fake(monkeypatch):
    """`register_fake(name, table)`: put a fake scorer in the registry for this test only."""

    def register(name: str, table: dict[str, float]) -> None:
        monkeypatch.setitem(SCORERS, name, fake_scorer(name, table))

    return register

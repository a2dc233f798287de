"""A `ContrastiveTrainer` on the tiny model and the shipped pairs, built the way the stage runner builds it."""

from pathlib import Path

import pytest
from datasets import Dataset

from align.data import load_preference_rows
from align.losses import LossTerm
from align.models import load_model, load_tokenizer
from align.recipe.trl_configs import make_lora_config, make_trainer_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tiny_trainer(tiny_model_dir, tmp_path):
    """`tiny_trainer(rows, training, model=None, **trainer_kwargs)`: DPO (β 0.1), LoRA r 4 on all linear layers, the
    first `rows` rows of `data/concise/train.jsonl`, `training` passed to trl's DPOConfig."""
    from align.training.trainer import ContrastiveTrainer

    def build(rows: int, training: dict, model=None, **trainer_kwargs) -> ContrastiveTrainer:
        pairs = load_preference_rows(REPO / "data" / "concise" / "train.jsonl")[:rows]
        config = make_trainer_config(
            "preference", training, output_dir=str(tmp_path / "trainer"), seed=0, report_to="none"
        )
        return ContrastiveTrainer(
            model=model if model is not None else load_model(str(tiny_model_dir), dtype="float32"),
            args=config,
            train_dataset=Dataset.from_list([row.to_conversational() for row in pairs]),
            processing_class=load_tokenizer(str(tiny_model_dir)),
            peft_config=make_lora_config({"r": 4, "target_modules": "all-linear"}),
            loss_terms=[LossTerm("dpo", 1.0, {"beta": 0.1})],
            **trainer_kwargs,
        )

    return build

"""`align validate --explain KEY` prints each key's single documentation."""

import pytest

from align.errors import AlignError
from align.recipe.explain import explain


def test_explains_schema_keys_and_lists_losses():
    assert "short name" in explain("model.name")
    text = explain("stages.loss")
    assert "dpo" in text and "beta=0.1" in text


def test_explains_passthrough_keys_from_trl_and_peft():
    """If these fail, `training:`/`peft:`/`model.quantization:` docs no longer come from the libraries that own
    them."""
    assert "DPOConfig" in explain("training.learning_rate")
    assert "DPOConfig" in explain("stages.training.learning_rate")
    assert "LoraConfig" in explain("peft.r")
    assert "BitsAndBytesConfig" in explain("model.quantization.load_in_4bit")


def test_unknown_key_suggests():
    with pytest.raises(AlignError, match="did you mean 'model.name'"):
        explain("model.nme")

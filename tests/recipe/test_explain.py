"""`align validate --explain KEY` prints each key's single documentation."""

import dataclasses
import inspect

import pytest

from align.errors import AlignError
from align.losses import get_loss, loss_names
from align.recipe.explain import explain
from align.recipe.schema import GatesConfig, ModelConfig, StageConfig


def _field_doc(cls, name: str) -> str:
    return next(spec.metadata["doc"] for spec in dataclasses.fields(cls) if spec.name == name)


def _library_help(cls, name: str) -> str:
    return next(spec.metadata["help"] for spec in dataclasses.fields(cls) if spec.name == name)


def test_explains_schema_keys_with_the_fields_own_documentation():
    """The text is the schema field's `doc(...)`, word for word. If this fails, `--explain` prints something other
    than the documentation written next to the field (or only the key and its type)."""
    name_doc = _field_doc(ModelConfig, "name")
    assert name_doc.startswith("A short name (`smollm2-135m-instruct`, the embedded default;")
    assert explain("model.name") == f"model.name: {name_doc} [a string]"
    gate_doc = _field_doc(GatesConfig, "min_pair_accuracy")
    assert "Least held-out reward accuracy" in gate_doc
    assert gate_doc in explain("stages.eval.gates.min_pair_accuracy")


def test_loss_catalogue_lists_each_losses_docstring_and_defaults():
    """Every registered loss appears with the first line of its own docstring; dpo's line, worked by hand, also
    carries its default β. If this fails, the catalogue lost a loss, its summary, or its defaults."""
    text = explain("stages.loss")
    assert _field_doc(StageConfig, "loss") in text
    for name in loss_names():
        summary = inspect.getdoc(get_loss(name)).splitlines()[0]
        assert len(summary) > 10 and summary in text, name
    dpo_line = next(line for line in text.splitlines() if line.strip().startswith("dpo "))
    assert "DPO: −log σ(β·h), h = (π_c − ref_c) − (π_r − ref_r)." in dpo_line
    assert dpo_line.endswith("[reference; beta=0.1]")


def test_explains_passthrough_keys_from_trl_and_peft():
    """The help text is trl's / peft's own field help and transformers' docstring, read here from those libraries.
    If these fail, `training:`/`peft:`/`model.quantization:` docs no longer come from the libraries that own them
    (the class name align appends alone would not do)."""
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig
    from trl import DPOConfig

    learning_rate = _library_help(DPOConfig, "learning_rate")
    assert "learning rate" in learning_rate
    for key in ("training.learning_rate", "stages.training.learning_rate"):
        text = explain(key)
        assert text.startswith(f"{key}: {learning_rate}") and "DPOConfig" in text
    lora_r = _library_help(LoraConfig, "r")
    assert "Lora attention dimension" in lora_r
    assert explain("peft.r").startswith(f"peft.r: {lora_r}") and "LoraConfig" in explain("peft.r")
    phrase = "This flag is used to enable 4-bit quantization"
    assert phrase in inspect.getdoc(BitsAndBytesConfig)
    text = explain("model.quantization.load_in_4bit")
    assert phrase in text and "BitsAndBytesConfig" in text


def test_unknown_key_suggests():
    with pytest.raises(AlignError, match="did you mean 'model.name'"):
        explain("model.nme")

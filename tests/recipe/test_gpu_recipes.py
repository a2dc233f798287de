"""The GPU example recipes and `model.quantization` (QLoRA): validated here on a CPU, never trained in CI."""

from pathlib import Path

import pytest
import torch

from align.cli import main
from align.recipe import load_recipe
from align.recipe.explain import explain
from align.recipe.trl_configs import (
    hardware_neutral,
    make_quantization_config,
    make_trainer_config,
    quantization_enabled,
    quantization_fields,
    quantization_kwargs,
)
from tests.recipe.conftest import recipe_problems as _problems

REPO = Path(__file__).resolve().parents[2]
GPU_RECIPES = sorted((REPO / "recipes" / "gpu").glob("*.yaml"))
QLORA = REPO / "recipes" / "gpu" / "qwen2.5-7b-qlora.yaml"
LORA = REPO / "recipes" / "gpu" / "llama3-8b-lora.yaml"

QUANTIZED = """\
name: q
model:
  name: tiny-llama
  quantization:
    load_in_4bit: true
    bnb_4bit_quant_type: nf4
    bnb_4bit_compute_dtype: bfloat16
stages:
  - name: first
    data:
      train: [{path: pairs.jsonl}]
"""


def test_gpu_recipes_are_shipped():
    """If this fails, the 7–8B LoRA and QLoRA examples the issue asks for are missing from recipes/gpu/."""
    assert [p.name for p in GPU_RECIPES] == ["llama3-8b-lora.yaml", "qwen2.5-7b-qlora.yaml"]


@pytest.mark.parametrize("path", GPU_RECIPES, ids=lambda p: p.name)
def test_gpu_recipe_validates_with_the_cli_on_a_cpu_machine(path, capsys):
    """If this fails, `align validate` refuses a GPU recipe on a machine without a GPU (e.g. because `bf16: true`
    trips transformers' hardware check, or bitsandbytes is missing), so CI could not check what we ship."""
    assert main(["validate", str(path)]) == 0
    assert "OK: 3 stage(s)" in capsys.readouterr().out


@pytest.mark.parametrize("path", GPU_RECIPES, ids=lambda p: p.name)
def test_gpu_recipe_trains_with_realistic_gpu_settings(path):
    """If this fails, a GPU recipe lost what makes an 8B run fit and resume: bf16, activation checkpointing (the key
    name trl's config actually reads), gradient accumulation, max_length 1024 and periodic checkpoints."""
    loaded = load_recipe(path)
    assert loaded.recipe.model.dtype == "bfloat16" and loaded.recipe.model.trust_remote_code is False
    assert [s.kind for s in loaded.recipe.stages] == ["sft", "preference", "preference"]
    assert loaded.recipe.stages[-1].reference == "previous"
    for stage in loaded.recipe.stages:
        training = loaded.stage_training(stage)
        assert training["bf16"] is True and training["max_length"] == 1024
        assert training["gradient_accumulation_steps"] > 1 and training["save_strategy"] == "steps"
        assert stage.eval.prompts and stage.eval.gates.max_key_point_recall_drop is not None
        config = make_trainer_config(
            stage.kind, hardware_neutral(training), output_dir="unused", seed=0, report_to="none"
        )
        assert config.activation_checkpointing is True and config.gradient_checkpointing is True
        assert config.save_steps == 20 and config.max_length == 1024


def test_only_the_qlora_recipe_quantizes():
    """If this fails, the LoRA recipe would load a quantised model or the QLoRA one a full bf16 7B model (OOM)."""
    assert not quantization_enabled(load_recipe(LORA).recipe.model.quantization)
    assert quantization_enabled(load_recipe(QLORA).recipe.model.quantization)


def test_quantization_mapping_reaches_bitsandbytes_config():
    """If this fails, the recipe's `model.quantization` no longer arrives as BitsAndBytesConfig keyword arguments, so
    QLoRA would load with transformers' defaults (fp4, fp32 compute) or not at all."""
    quantization = load_recipe(QLORA).recipe.model.quantization
    assert set(quantization_kwargs(quantization)) <= set(quantization_fields())
    config = make_quantization_config(quantization)
    assert type(config).__name__ == "BitsAndBytesConfig"
    assert config.load_in_4bit is True and config.load_in_8bit is False
    assert config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_use_double_quant is True
    assert config.bnb_4bit_compute_dtype == torch.bfloat16


def test_quantization_keys_come_from_bitsandbytes_config_signature():
    """If this fails, valid keys are rejected or the catch-all `**kwargs` (which swallows typos) counts as a key."""
    fields = quantization_fields()
    assert {"load_in_4bit", "load_in_8bit", "bnb_4bit_quant_type", "bnb_4bit_compute_dtype"} <= set(fields)
    assert "kwargs" not in fields and "self" not in fields
    assert fields["bnb_4bit_quant_type"] == "fp4"


def test_misspelt_quantization_key_names_file_line_and_suggestion(recipe_dir):
    """If this fails, a typo such as `bnb_4bit_quant_typ` is ignored (BitsAndBytesConfig accepts any keyword) and a
    run silently quantises with fp4 instead of nf4, or the error no longer points at the line."""
    text = QUANTIZED.replace("bnb_4bit_quant_type: nf4", "bnb_4bit_quant_typ: nf4")
    (problem,) = _problems(recipe_dir("r.yaml", text))
    assert problem.endswith(
        "r.yaml:6: model.quantization.bnb_4bit_quant_typ: unknown key; did you mean 'bnb_4bit_quant_type'?"
    )


def test_bad_quantization_values_are_reported_at_their_lines(recipe_dir):
    """If this fails, values BitsAndBytesConfig stores unchecked (a quant type `nf5`, a dtype `bf16`, a string
    flag) would pass validation and only fail inside bitsandbytes on the GPU, after the model download."""
    text = (
        QUANTIZED.replace("nf4", "nf5")
        .replace("compute_dtype: bfloat16", "compute_dtype: bf16")
        .replace("load_in_4bit: true", "load_in_4bit: 'yes'")
    )
    joined = "\n".join(_problems(recipe_dir("r.yaml", text)))
    assert "r.yaml:5: model.quantization.load_in_4bit: expected bool, got str 'yes'" in joined
    assert "r.yaml:6: model.quantization.bnb_4bit_quant_type: 'nf5' is not allowed; use 'nf4' | 'fp4'" in joined
    assert "r.yaml:7: model.quantization.bnb_4bit_compute_dtype: 'bf16' is not allowed" in joined


def test_quantization_that_quantizes_nothing_or_both_ways_is_refused(recipe_dir):
    """If this fails, a mapping without `load_in_4bit`/`load_in_8bit` would silently load a full-precision model,
    or BitsAndBytesConfig's own check (not both at once) would surface as a traceback instead of a problem."""
    (problem,) = _problems(recipe_dir("r.yaml", QUANTIZED.replace("    load_in_4bit: true\n", "")))
    assert "model.quantization: quantizes nothing: add `load_in_4bit: true`" in problem
    text = QUANTIZED.replace("load_in_4bit: true", "load_in_4bit: true\n    load_in_8bit: true")
    (problem,) = _problems(recipe_dir("r.yaml", text))
    assert "model.quantization: transformers' BitsAndBytesConfig rejects these arguments: load_in_4bit and" in problem


def test_quantization_can_be_turned_off_and_ints_become_floats(recipe_dir):
    """If this fails, `--set model.quantization.load_in_4bit=false` no longer turns an inherited QLoRA setting off,
    or YAML `llm_int8_threshold: 6` (an int) is refused by BitsAndBytesConfig's float check."""
    path = recipe_dir("r.yaml", QUANTIZED)
    off = load_recipe(path, ["model.quantization.load_in_4bit=false"]).recipe.model.quantization
    assert not quantization_enabled(off)
    loaded = load_recipe(path, ["model.quantization.llm_int8_threshold=6"])
    assert make_quantization_config(loaded.recipe.model.quantization).llm_int8_threshold == 6.0
    assert load_recipe(path, ["model.quantization={}"]).recipe.model.quantization == {}


def test_hardware_neutral_validation_still_checks_values(recipe_dir):
    """If this fails, letting `bf16: true` validate without a GPU also hid real mistakes in the same mapping."""
    text = QUANTIZED + "training: {bf16: true, fp16: true}\n"
    (problem,) = _problems(recipe_dir("r.yaml", text))
    assert "DPOConfig rejects these arguments: At most one of fp16 and bf16" in problem


def test_explain_model_quantization_prints_its_documentation(capsys):
    """If this fails, `align validate --explain model.quantization` no longer documents QLoRA and its keys."""
    assert main(["validate", "--explain", "model.quantization"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("model.quantization: ") and "BitsAndBytesConfig" in out and "QLoRA" in out
    assert "bnb_4bit_quant_type" in out and "load_in_4bit" in out
    text = explain("model.quantization.bnb_4bit_quant_type")
    assert "nf4" in text and "passed to BitsAndBytesConfig" in text

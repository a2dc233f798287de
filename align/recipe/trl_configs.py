"""The configs a recipe passes through to its libraries, built with align's defaults: `training:` → trl's `DPOConfig`
(preference stages) or `SFTConfig` (sft stages), `peft:` → peft's `LoraConfig`, `model.quantization` → transformers'
`BitsAndBytesConfig`. Checking a recipe's keys and values against these classes is `align.recipe.trl_checks`.
"""

from __future__ import annotations

import dataclasses
import inspect
import tempfile
from typing import Any

from align.engines import cpu_engine
from align.runtime import multi_process_cpu


def training_defaults() -> dict[str, Any]:
    """align's defaults under the recipe's `training`.

    trl defaults to bf16 autocast and gradient checkpointing, which run ~4x slower on a CPU: use bf16 only on a GPU
    that has it, and recompute activations only when asked. The learning rate suits LoRA (trl's 1e-6 is for full
    fine-tuning).
    """
    import torch

    return {
        "bf16": bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported()),
        "activation_checkpointing": False,
        "dataloader_pin_memory": torch.cuda.is_available(),
        "learning_rate": 5e-5,
        "logging_steps": 1,
        "save_total_limit": 2,
        "max_length": 512,
        "dataloader_num_workers": 0,
        # A sharded engine on CPUs runs without accelerate's `cpu` flag, which would turn it off (`align.engines`).
        "use_cpu": multi_process_cpu() and not cpu_engine(),
        **({"ddp_backend": "gloo"} if cpu_engine() else {}),
        # transformers otherwise logs a NaN/inf loss as the mean of earlier ones, hiding it from the NaN guard.
        "logging_nan_inf_filter": False,
    }


def config_class(kind: str):
    """trl's config class for a stage kind (the kind's `trl_config`, `align.stages`), e.g. `DPOConfig`."""
    from align.stages import stage_kind

    return stage_kind(kind).config_class()


def config_fields(kind: str) -> set[str]:
    return {f.name for f in dataclasses.fields(config_class(kind)) if f.init}


def lora_config_fields() -> set[str]:
    from peft import LoraConfig

    return {f.name for f in dataclasses.fields(LoraConfig) if f.init}


def make_trainer_config(
    kind: str, training: dict, *, output_dir: str, seed: int, report_to: str, run_name: str | None = None
):
    """trl's config for `kind` from align's defaults overlaid with the recipe's `training` mapping."""
    defaults = training_defaults()
    if {"gradient_checkpointing", "activation_checkpointing"} & set(training):
        # transformers reads the old name only when the new one is unset: let the recipe's choice win.
        defaults.pop("activation_checkpointing")
    values = {**defaults, **training}
    return config_class(kind)(output_dir=output_dir, seed=seed, report_to=report_to, run_name=run_name, **values)


def make_lora_config(peft: dict):
    """A `LoraConfig` for a causal LM from the recipe's `peft` mapping."""
    from peft import LoraConfig

    return LoraConfig(task_type="CAUSAL_LM", **peft)


def hardware_neutral(training: dict) -> dict:
    """`training` as validated. Building the config also checks this machine: `bf16: true` fails without a GPU that
    has bf16 (unless `use_cpu`), `tf32: true` without an Ampere GPU. Those are the training machine's to check, so a
    GPU recipe validates on a laptop or in CI; every value is still checked as written."""
    import torch
    from transformers.utils import is_torch_tf32_available

    values = dict(training)
    gpu_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if (values.get("bf16") or values.get("bf16_full_eval")) and not gpu_bf16 and "use_cpu" not in values:
        values["use_cpu"] = True
    if values.get("tf32") and not is_torch_tf32_available():
        values["tf32"] = None
    return values


def quantization_fields() -> dict[str, Any]:
    """`BitsAndBytesConfig`'s keyword arguments and their defaults. It is no dataclass and its `**kwargs` swallows any
    name (a misspelt key would be logged at info level and ignored), so its signature is the list of valid keys."""
    from transformers import BitsAndBytesConfig

    params = inspect.signature(BitsAndBytesConfig.__init__).parameters.values()
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {p.name: p.default for p in params if p.name != "self" and p.kind not in variadic}


def quantization_enabled(quantization: dict | None) -> bool:
    """Whether `model.quantization` asks for a quantised base model: `load_in_4bit` or `load_in_8bit` is true.
    `load_in_4bit: false` (e.g. `--set model.quantization.load_in_4bit=false`) turns a recipe's QLoRA off."""
    return bool(quantization) and (quantization.get("load_in_4bit") is True or quantization.get("load_in_8bit") is True)


def quantization_kwargs(quantization: dict) -> dict[str, Any]:
    """The `model.quantization` mapping as `BitsAndBytesConfig` keyword arguments (YAML `6` for a float field, such as
    `llm_int8_threshold`, becomes `6.0`: the config refuses ints there)."""
    defaults = quantization_fields()
    return {
        key: float(value)
        if isinstance(defaults.get(key), float) and isinstance(value, int) and not isinstance(value, bool)
        else value
        for key, value in quantization.items()
    }


def make_quantization_config(quantization: dict):
    """transformers' `BitsAndBytesConfig` from the recipe's `model.quantization` mapping (needs no bitsandbytes)."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(**quantization_kwargs(quantization))


def planning_config(kind: str, training: dict):
    """The trl config a stage of `kind` would train with, built on any machine (`hardware_neutral`), for reading
    its settings (batch size, epochs, `max_length`) before training: `align plan` and `align data inspect`."""
    with tempfile.TemporaryDirectory(prefix="align-plan-") as scratch:
        return make_trainer_config(kind, hardware_neutral(training), output_dir=scratch, seed=0, report_to="none")

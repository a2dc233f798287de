"""`training:` and `peft:` pass through to trl's `DPOConfig` (preference stages) or `SFTConfig` (sft stages) and
peft's `LoraConfig`, with align's defaults; `model.quantization` passes through to transformers' `BitsAndBytesConfig`.

Their own classes validate values; this module checks key names first (with suggestions) and sets what align owns
(output folders, seed, trackers).
"""

from __future__ import annotations

import dataclasses
import inspect
import tempfile
from typing import Any

from align.engines import cpu_engine
from align.recipe.trl_refusals import TRL_REFUSALS, refused_training_keys
from align.recipe.typed import Collector, suggest
from align.recipe.value_types import check_value_types
from align.recipe.yaml_source import KeyPath
from align.runtime import multi_process_cpu

# Keys align sets itself, with where the user should put them instead (trl's keys align would ignore, and what to
# write instead, are in `align.recipe.trl_refusals`).
RESERVED_TRAINING_KEYS = {
    "output_dir": "set `output_dir` at the top level or pass --output-dir",
    "report_to": "set `report_to` at the top level of the recipe",
    "seed": "set `seed` at the top level of the recipe",
    "run_name": "the run name comes from the recipe's `name`",
}
RESERVED_PEFT_KEYS = {"task_type": "align trains causal LMs; task_type is always CAUSAL_LM"}
# Numbers that must be positive, which trl/transformers and peft accept at 0 or below when the config is built: a
# zero batch size or learning rate, a negative max_length or LoRA rank only failed (or trained nothing) later.
# The *_steps keys are counts, or ratios in (0, 1) of the total steps.
POSITIVE_TRAINING_KEYS = (
    "learning_rate",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "logging_steps",
    "save_steps",
    "eval_steps",
)
POSITIVE_PEFT_KEYS = ("r", "lora_alpha")
# Values BitsAndBytesConfig stores without checking, so a typo would only fail inside bitsandbytes on the GPU.
QUANT_TYPES = ("nf4", "fp4")
COMPUTE_DTYPES = ("bfloat16", "float16", "float32")


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


def _sets_itself(hints: dict[str, str]) -> dict[str, str]:
    return {key: f"align sets this itself: {hint}" for key, hint in hints.items()}


def reserved_training_keys(kind: str) -> dict[str, str]:
    """Key → one-line message for each `training` key a stage of `kind` may not set."""
    return {**_sets_itself(RESERVED_TRAINING_KEYS), **refused_training_keys(kind)}


def lora_config_fields() -> set[str]:
    from peft import LoraConfig

    return {f.name for f in dataclasses.fields(LoraConfig) if f.init}


def check_keys(values: dict, known: set[str], reserved: dict[str, str], path: KeyPath, out: Collector) -> bool:
    """Record unknown keys and reserved ones (`reserved`: key → message); True if every key may be passed on."""
    ok = True
    for key in values:
        if key in reserved:
            out.add(path + (key,), reserved[key])
            ok = False
        elif key not in known:
            out.add(path + (key,), f"unknown key{suggest(str(key), known - set(reserved))}")
            ok = False
    return ok


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


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


def check_training_keys(kind: str, training: dict, path: KeyPath, out: Collector) -> bool:
    """Record unknown and reserved `training` keys, and values of the wrong type for their trl field, at their own
    lines; True if all may be passed on."""
    if not check_keys(training, config_fields(kind), reserved_training_keys(kind), path, out):
        return False
    if not check_value_types(training, config_class(kind), path, out):
        return False
    return check_positive(training, POSITIVE_TRAINING_KEYS, path, out)


def check_positive(values: dict, keys: tuple[str, ...], path: KeyPath, out: Collector) -> bool:
    """Record each of `keys` whose value is a number that is not positive (NaN included); True if none is."""
    ok = True
    for key in keys:
        value = values.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not value > 0:
            out.add(path + (key,), f"{value} must be positive")
            ok = False
    return ok


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


def validate_training_values(kind: str, training: dict, path: KeyPath, out: Collector) -> None:
    """Check a merged `training` mapping (names already checked) by building the trl config it describes."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            make_trainer_config(kind, hardware_neutral(training), output_dir=scratch, seed=0, report_to="none")
        except (ValueError, TypeError) as exc:
            out.add(path, f"trl's {config_class(kind).__name__} rejects these arguments: {_first_line(exc)}")


def validate_peft(peft: dict, path: KeyPath, out: Collector) -> None:
    """Check the `peft` mapping by building the `LoraConfig` it describes."""
    from peft import LoraConfig

    if not check_keys(peft, lora_config_fields(), _sets_itself(RESERVED_PEFT_KEYS), path, out):
        return
    # LoraConfig checks neither types nor ranges: `r: sixteen`, `r: 0` or `lora_dropout: 2` passed validation and
    # failed only when the adapter was built (or, for lora_dropout, in the first forward pass).
    if not (check_value_types(peft, LoraConfig, path, out) and check_positive(peft, POSITIVE_PEFT_KEYS, path, out)):
        return
    dropout = peft.get("lora_dropout", 0.0)
    if not 0.0 <= dropout < 1.0:
        out.add(path + ("lora_dropout",), f"{dropout} must be in [0, 1)")
        return
    try:
        make_lora_config(peft)
    except (ValueError, TypeError) as exc:
        out.add(path, f"peft's LoraConfig rejects these arguments: {_first_line(exc)}")


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


def validate_quantization(quantization: dict, path: KeyPath, out: Collector) -> None:
    """Check `model.quantization`: key names (with suggestions), that it quantises something, the values
    BitsAndBytesConfig leaves to bitsandbytes, then its own checks. Needs neither a GPU nor bitsandbytes."""
    if not quantization or not check_keys(quantization, set(quantization_fields()), {}, path, out):
        return
    if "load_in_4bit" not in quantization and "load_in_8bit" not in quantization:
        out.add(path, "quantizes nothing: add `load_in_4bit: true` (QLoRA) or `load_in_8bit: true`")
        return
    ok = check_value_types(quantization_kwargs(quantization), _QuantizationTypes, path, out)
    for key, allowed in (("bnb_4bit_quant_type", QUANT_TYPES), ("bnb_4bit_compute_dtype", COMPUTE_DTYPES)):
        if key in quantization and quantization[key] not in allowed:
            out.add(path + (key,), f"{quantization[key]!r} is not allowed; use {' | '.join(map(repr, allowed))}")
            ok = False
    if not ok:
        return
    try:
        make_quantization_config(quantization)
    except ImportError:
        pass  # a transformers that looks bitsandbytes up here: the names and types are checked, loading checks the rest
    except (ValueError, TypeError, AttributeError) as exc:
        out.add(path, f"transformers' BitsAndBytesConfig rejects these arguments: {_first_line(exc)}")


class _QuantizationTypes:
    """The plain-typed `BitsAndBytesConfig` arguments, for `check_plain_types` (the config itself is not annotated)."""

    load_in_8bit: bool
    load_in_4bit: bool
    llm_int8_threshold: float
    llm_int8_enable_fp32_cpu_offload: bool
    llm_int8_has_fp16_weight: bool
    bnb_4bit_use_double_quant: bool


def _docstring_args(cls) -> dict[str, str]:
    """`name → description` from a Google-style `Args:` section (how transformers documents its config classes)."""
    args: dict[str, str] = {}
    name = None
    in_args = False
    for line in (inspect.getdoc(cls) or "").splitlines():
        if line.strip() == "Args:":
            in_args = True
        elif in_args and line.startswith("    ") and not line.startswith("        ") and "(" in line:
            name = line.strip().split(" ", 1)[0]
            args[name] = line.strip()
        elif in_args and name and line.startswith("        "):
            args[name] += " " + line.strip()
        elif in_args and line.strip() and not line.startswith(" "):
            break
    return args


def explain_quantization(key: str) -> str | None:
    """`model.quantization` (the accepted keys) or `model.quantization.X` (its documentation from transformers)."""
    if key == "model.quantization":
        return "Accepted keys (transformers' BitsAndBytesConfig): " + ", ".join(quantization_fields())
    name = key.removeprefix("model.quantization.")
    if name == key:
        return None
    from transformers import BitsAndBytesConfig

    fields = quantization_fields()
    if name not in fields:
        return None
    text = _docstring_args(BitsAndBytesConfig).get(name) or name
    return f"{key}: {text} (default: {fields[name]!r}; passed to BitsAndBytesConfig)"


def explain_passthrough(key: str) -> str | None:
    """The documentation of a `training.X` or `peft.X` key, from trl's or peft's own field help, or of a
    `model.quantization.X` key from transformers' `BitsAndBytesConfig` docstring."""
    if key.startswith("model.quantization."):
        return explain_quantization(key)
    section, _, name = key.removeprefix("stages.").partition(".")
    if section == "training" and name in TRL_REFUSALS:
        refusal = TRL_REFUSALS[name]
        return f"{key}: trl's option, refused in align's {' and '.join(refusal.kinds)} stages: {refusal.instead}"
    if section == "training":
        from trl import DPOConfig as cls
    elif section == "peft":
        from peft import LoraConfig as cls
    else:
        return None
    for spec in dataclasses.fields(cls):
        if spec.name == name:
            help_text = spec.metadata.get("help") or inspect.getdoc(cls) or ""
            return f"{key}: {help_text} (default: {spec.default!r}; passed to {cls.__name__})"
    return None

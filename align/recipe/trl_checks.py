"""Checks of a recipe's `training:`, `peft:` and `model.quantization` mappings against the library classes they pass
through to (`align.recipe.trl_configs`).

Those classes validate values themselves; these checks first report key names (unknown ones with suggestions, and the
ones align sets itself: output folders, seed, trackers), value types and ranges the classes let through, each at its
own line, then build the config to collect the classes' own refusals.
"""

from __future__ import annotations

import tempfile

from align.recipe.trl_configs import (
    config_class,
    config_fields,
    hardware_neutral,
    lora_config_fields,
    make_lora_config,
    make_quantization_config,
    make_trainer_config,
    quantization_fields,
    quantization_kwargs,
)
from align.recipe.trl_refusals import refused_training_keys
from align.recipe.typed import Collector, suggest
from align.recipe.value_types import check_value_types
from align.recipe.yaml_source import KeyPath

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


def _sets_itself(hints: dict[str, str]) -> dict[str, str]:
    return {key: f"align sets this itself: {hint}" for key, hint in hints.items()}


def reserved_training_keys(kind: str) -> dict[str, str]:
    """Key → one-line message for each `training` key a stage of `kind` may not set."""
    return {**_sets_itself(RESERVED_TRAINING_KEYS), **refused_training_keys(kind)}


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
    """The plain-typed `BitsAndBytesConfig` arguments, for `check_value_types` (the config itself is not annotated)."""

    load_in_8bit: bool
    load_in_4bit: bool
    llm_int8_threshold: float
    llm_int8_enable_fp32_cpu_offload: bool
    llm_int8_has_fp16_weight: bool
    bnb_4bit_use_double_quant: bool

"""Help text for the keys a recipe passes through (`align explain`): trl's and peft's dataclass field help, and the
`Args:` section of transformers' `BitsAndBytesConfig` docstring.
"""

from __future__ import annotations

import dataclasses
import inspect

from align.recipe.trl_configs import quantization_fields
from align.recipe.trl_refusals import TRL_REFUSALS


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
        why = f" ({refusal.effect})" if refusal.effect else ""
        return f"{key}: trl's option, refused in align's {' and '.join(refusal.kinds)} stages{why}: {refusal.instead}"
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

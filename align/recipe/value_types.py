"""Recipe values checked against the type annotations of the classes they are passed to (trl's `DPOConfig` /
`SFTConfig`, peft's `LoraConfig`, `BitsAndBytesConfig`'s plain arguments).

Those classes neither coerce nor check types: `learning_rate: fast` passed their checks and crashed inside the
optimizer, `bf16: sure` (`bool | None`) turned bf16 on, `target_modules: {oops: [1, 2]}` (`list[str] | str | None`)
failed only when the adapter was built. Annotations are read generally: plain types, `X | None`, unions, `list[X]`,
`tuple[X, Y]`, `dict[K, V]`, `Literal[...]` and enums; a class this check cannot judge (a nested config dataclass)
is left to the config itself, and so is a string for a `Literal` of strings (peft lists templates such as
`'pissa_niter_[number of iters]'` there).
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

from align.recipe.typed import Collector
from align.recipe.yaml_source import KeyPath

# A verdict: True (fits), False (does not), None (cannot tell: the config class checks it).
Verdict = bool | None
# Fields whose class accepts more than its annotation says, by the class that declares them: transformers annotates
# `fsdp` as `str | None` but also takes a list of options (its legacy form) and a bool.
ACCEPTED_BEYOND_ANNOTATION = {("TrainingArguments", "fsdp"): str | list[str] | bool | None}


def _all(verdicts) -> Verdict:
    verdicts = list(verdicts)
    return False if False in verdicts else (None if None in verdicts else True)


def _any(verdicts) -> Verdict:
    verdicts = list(verdicts)
    return True if True in verdicts else (None if None in verdicts else False)


def _literal(value: Any, choices: tuple) -> Verdict:
    if any(type(value) is type(choice) and value == choice for choice in choices):
        return True
    return None if isinstance(value, str) and any(isinstance(c, str) for c in choices) else False


def _sequence(value: Any, origin, args: tuple) -> Verdict:
    if not isinstance(value, list):  # YAML has lists only, also where the class says tuple
        return False
    if origin is tuple and args and args[-1] is not Ellipsis:
        return len(value) == len(args) and _all(fits(v, a) for v, a in zip(value, args, strict=False))
    return _all(fits(item, args[0] if args else Any) for item in value)


def _scalar(value: Any, annotation) -> Verdict:
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:  # an int is a fine float
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return any(type(value) is type(m.value) and value == m.value for m in annotation)
    return None


def fits(value: Any, annotation) -> Verdict:
    """Whether a value read from YAML fits `annotation`: True, False, or None when this check cannot tell."""
    if annotation is Any:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return _any(fits(value, arm) for arm in args)
    if origin is typing.Literal:
        return _literal(value, args)
    if origin in (list, tuple) or annotation in (list, tuple):
        return _sequence(value, origin or annotation, args)
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            return False
        key_type, value_type = args or (Any, Any)
        return _all(_all([fits(k, key_type), fits(v, value_type)]) for k, v in value.items())
    return _scalar(value, annotation)


def describe(annotation) -> str:
    """An annotation as the error names it: `list[str] | str | None`, `'none' | 'all'`, `float`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is None or annotation is type(None):
        return "None"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(describe(arm) for arm in args)
    if origin is typing.Literal:
        return " | ".join(repr(choice) for choice in args)
    if origin is not None:
        inner = ", ".join("..." if arg is Ellipsis else describe(arg) for arg in args)
        return f"{origin.__name__}[{inner}]" if inner else origin.__name__
    return getattr(annotation, "__name__", str(annotation))


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_value_types(values: dict, cls, path: KeyPath, out: Collector) -> bool:
    """Record, at its own key, each value of `values` that does not fit the annotation of the field of `cls` it is
    passed to (naming the expected type); True if none."""
    hints = typing.get_type_hints(cls)
    for base in reversed(cls.__mro__):
        hints.update({key: tp for (owner, key), tp in ACCEPTED_BEYOND_ANNOTATION.items() if owner == base.__name__})
    ok = True
    for key, value in values.items():
        if key in hints and fits(value, hints[key]) is False:
            message = f"expected {describe(hints[key])}, got {type(value).__name__} {_shown(value)}"
            if isinstance(value, bool) and fits("a string", hints[key]) is not False:
                message += " (YAML reads unquoted yes/no/on/off/true/false as booleans: quote it)"
            out.add(path + (key,), message)
            ok = False
    return ok

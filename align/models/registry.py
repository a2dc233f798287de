"""Short model names (`smollm2-135m-instruct`, `tiny-llama`) and where their local Hugging Face folders live.

A short name maps to a *preparer*: a function that writes a plain Hugging Face model folder (config, safetensors,
tokenizer, chat template) into a target directory. Folders are built once into the cache (`align.models.cache`) and
reused.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from align.errors import AlignError
from align.models.cache import Preparer, prepare_cached

CACHE_ENV = "ALIGN_CACHE"
#: The model a recipe trains when it names none, and the tokenizer data tools measure tokens with by default.
DEFAULT_MODEL = "smollm2-135m-instruct"

_PREPARERS: dict[str, tuple[Preparer, str]] = {}
#: Short name → the Hub id of the model it is a local copy of, for short names that have one: what an exported
#: adapter names as its base, so it loads on a machine without align.
_HUB_IDS: dict[str, str] = {}


def register_model(name: str, description: str, hub_id: str | None = None) -> Callable[[Preparer], Preparer]:
    """Register `fn(target_dir)` as the builder of the short model name `name`; `hub_id`: the Hub model it copies."""

    def wrap(fn: Preparer) -> Preparer:
        _PREPARERS[name] = (fn, description)
        if hub_id is not None:
            _HUB_IDS[name] = hub_id
        return fn

    return wrap


def hub_model_id(name: str) -> str | None:
    """The Hub id of the short-named model `name`; None for other names and for built-in models with no Hub copy."""
    return _HUB_IDS.get(name)


def short_name_for_hub_id(hub_id: str) -> str | None:
    """The short name whose model is a local copy of the Hub model `hub_id` (the reverse of `hub_model_id`), so an
    adapter that names its base by Hub id loads it from align's cache, offline; None when no short name copies it."""
    return next((name for name, known in _HUB_IDS.items() if known == hub_id), None)


def short_model_names() -> dict[str, str]:
    """Short name → one-line description, for `--help` texts and error messages."""
    return {name: desc for name, (_, desc) in sorted(_PREPARERS.items())}


def cache_dir() -> Path:
    """Where prepared models live: `$ALIGN_CACHE`, else `~/.cache/align`."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "align").expanduser()


def resolve_model_path(name: str) -> str:
    """Turn a short name, local path or Hub id into what `from_pretrained` takes.

    Short names are prepared on first use (the embedded SmolLM2 takes ~40 s to convert); local paths must exist;
    anything else is passed on as a Hub id.
    """
    if name in _PREPARERS:
        return str(prepare_model(name))
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise AlignError(f"model {name!r}: folder has no config.json; give a Hugging Face model folder")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        known = ", ".join(_PREPARERS)
        raise AlignError(f"model {name!r}: no such folder; use an existing path, a Hub id or one of: {known}")
    return name


def prepare_model(name: str, force: bool = False) -> Path:
    """Build the short-named model into the cache once (or again with `force`); return its folder.

    Safe under any number of processes and runs at once, and a cache folder that is not a complete preparation is
    rebuilt with a one-line warning: `align.models.cache`.
    """
    preparer, _ = _PREPARERS[name]
    return prepare_cached(name, preparer, cache_dir() / "models", force=force)

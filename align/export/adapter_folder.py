"""A portable adapter folder: `adapter_config.json` names the base model as another machine finds it, the tokenizer
(with its chat template) sits beside the weights, and README.md is the stage's model card.

`finish_stage_adapter` is called once a stage's summary entry is final (after its probes and gates, also when a gate
missed), so the card reports them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from align.errors import AlignError, Problem
from align.export.card import ADAPTER, render_card
from align.export.facts import stage_facts
from align.models import hub_model_id, resolve_model_path, short_model_names
from align.models.cache import REQUIRED_FILES
from align.outputs import atomic_write_text

if TYPE_CHECKING:
    from align.recipe import LoadedRecipe
    from align.run_context import RunContext

ADAPTER_CONFIG = "adapter_config.json"
CARD = "README.md"


def portable_base_name(model_name: str) -> str:
    """The base model as an adapter should name it: a short name's Hub id (SmolLM2 → `HuggingFaceTB/SmolLM2-135M-
    Instruct`), an existing folder by its absolute path, anything else (a Hub id) as given. A built-in model with no
    Hub copy (`tiny-llama`) is named by its prepared folder in this machine's cache."""
    hub_id = hub_model_id(model_name)
    if hub_id is not None:
        return hub_id
    if model_name in short_model_names():
        return resolve_model_path(model_name)
    path = Path(model_name).expanduser()
    return str(path.resolve()) if path.exists() else model_name


def read_adapter_config(folder: Path) -> dict:
    """The folder's `adapter_config.json`; `AlignError` when it is missing or unreadable."""
    try:
        return json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AlignError(Problem(str(folder), f"not a PEFT adapter folder (no {ADAPTER_CONFIG})")) from None
    except (OSError, ValueError) as exc:
        raise AlignError(Problem(str(folder / ADAPTER_CONFIG), f"unreadable: {exc}")) from None


def set_base_model(folder: Path, base_name: str) -> None:
    """Rewrite `base_model_name_or_path` in the folder's `adapter_config.json` (atomically)."""
    config = read_adapter_config(folder)
    config["base_model_name_or_path"] = base_name
    atomic_write_text(folder / ADAPTER_CONFIG, json.dumps(config, indent=2, sort_keys=True) + "\n")


def has_tokenizer(folder: Path) -> bool:
    """Whether `folder` holds a tokenizer's vocabulary file."""
    return any((folder / name).is_file() for name in REQUIRED_FILES["tokenizer"])


def finish_stage_adapter(loaded: LoadedRecipe, run: RunContext, summary: dict, stage_summary: dict) -> Path:
    """Make the stage's saved adapter folder portable and write its model card from the run's `summary` (which holds
    `stage_summary`, final); return the folder. Called on the main process only."""
    folder = run.outputs.adapter_dir(stage_summary["name"])
    base = portable_base_name(loaded.recipe.model.name)
    set_base_model(folder, base)
    run.tokenizer.save_pretrained(folder)
    facts = stage_facts(summary, loaded.resolved_raw(), stage_summary["name"])
    atomic_write_text(folder / CARD, render_card(facts, ADAPTER, base, str(folder)))
    return folder

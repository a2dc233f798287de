"""What `align export` exports: one stage's adapter of a run folder (its last stage, or `--stage NAME`), or an
adapter folder, with the base model to merge it into and the facts its card reports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from align.errors import AlignError, Problem
from align.export.adapter_folder import portable_base_name, read_adapter_config
from align.export.facts import StageFacts, stage_facts
from align.models.registry import short_name_for_hub_id
from align.outputs import RunOutputs


@dataclass(frozen=True)
class ExportSource:
    """One adapter to export.

    Attributes:
        adapter_dir: the PEFT adapter folder.
        base_model: what to load the base model from (a short name, folder or Hub id).
        base_name: how the exported adapter and its card name the base model (`portable_base_name`).
        facts: the stage's card facts, or None for an adapter with no run record beside it.
        trust_remote_code: the run's `model.trust_remote_code` (False outside a run).
    """

    adapter_dir: Path
    base_model: str
    base_name: str
    facts: StageFacts | None = None
    trust_remote_code: bool = False


def _read_run(root: Path) -> tuple[dict, dict]:
    """The run's summary.json and recipe.resolved.yaml (an empty mapping when the latter is missing)."""
    outputs = RunOutputs(root)
    try:
        summary = json.loads(outputs.summary_path.read_text(encoding="utf-8"))
        resolved = outputs.resolved_recipe_path
        raw = yaml.safe_load(resolved.read_text(encoding="utf-8")) if resolved.exists() else {}
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise AlignError(Problem(str(root), f"unreadable run record: {exc}")) from None
    if not isinstance(summary, dict) or not isinstance(raw, dict):
        raise AlignError(Problem(str(root), "summary.json or recipe.resolved.yaml is not a mapping"))
    return summary, raw


def _pick_stage(root: Path, summary: dict, stage: str | None) -> str:
    """`stage` if the run finished it; else the run's last stage, if the run finished (or stopped at a gate that the
    user must name to export)."""
    done = [entry.get("name") for entry in summary.get("stages") or []]
    listed = ", ".join(map(str, done)) or "none"
    if stage is not None:
        if stage not in done:
            raise AlignError(Problem("--stage", f"{stage!r} is not a finished stage of {root} (finished: {listed})"))
        return stage
    status = summary.get("status")
    if status == "finished" and done:
        return done[-1]
    if status == "gate_missed" and done:
        message = f"the run stopped after stage {done[-1]!r} missed its gates; name the stage to export with --stage"
        raise AlignError(Problem(str(root), f"{message} ({listed})"))
    message = f"the run has not finished (status {status!r}); name one of its finished stages with --stage ({listed})"
    raise AlignError(Problem(str(root), message))


def _run_source(root: Path, stage: str | None, model: str | None) -> ExportSource:
    summary, raw = _read_run(root)
    name = _pick_stage(root, summary, stage)
    adapter = RunOutputs(root).adapter_dir(name)
    read_adapter_config(adapter)
    base_model = model or str(summary.get("model") or (raw.get("model") or {}).get("name"))
    trust = bool((raw.get("model") or {}).get("trust_remote_code", False))
    facts = stage_facts(summary, raw, name)
    return ExportSource(adapter, base_model, portable_base_name(base_model), facts, trust)


def find_source(path: str, stage: str | None = None, model: str | None = None) -> ExportSource:
    """The adapter that `path` (a run folder or an adapter folder) and `stage` name; `model` overrides the base
    model the run or the adapter's `adapter_config.json` names. `AlignError` when there is none."""
    root = Path(path).expanduser()
    if (root / "summary.json").is_file():
        return _run_source(root, stage, model)
    if not (root / "adapter_config.json").is_file():
        what = "no such folder" if not root.exists() else "neither a run folder (summary.json) nor an adapter folder"
        raise AlignError(Problem(path, f"{what}; give an `align train` output folder or a PEFT adapter folder"))
    run_root = root.parent.parent
    if root.name == "adapter" and (run_root / "summary.json").is_file():  # OUTPUT/<stage>/adapter of a run
        if stage not in (None, root.parent.name):
            raise AlignError(Problem("--stage", f"{stage!r} does not match the adapter folder {path}"))
        return _run_source(run_root, root.parent.name, model)
    if stage is not None:
        raise AlignError(Problem("--stage", "names a stage of a run folder; this is an adapter folder"))
    config = read_adapter_config(root)
    named = config.get("base_model_name_or_path")
    # An adapter naming a Hub model that a short name copies (SmolLM2) loads it from align's cache, offline.
    base_model = model or (short_name_for_hub_id(named) if named else None) or named
    if not base_model:
        raise AlignError(Problem(path, "adapter_config.json names no base model; give it with --model"))
    return ExportSource(root, base_model, portable_base_name(base_model) if model or base_model != named else named)

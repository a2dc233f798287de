"""Continuing an unfinished run: which stages are done, where the unfinished one stopped, and what of the old
output folder to keep.

A stage is done once its entry is in `summary.json` (written atomically after its adapter, also written atomically);
the unfinished stage restarts from its latest *complete* checkpoint (one whose `trainer_state.json`, which the
trainer writes last, parses), so a kill in the middle of writing a checkpoint costs only that checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from align.errors import AlignError, Problem
from align.outputs import RunOutputs, atomic_write_text

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class ResumePoint:
    """Where a resumed run picks up: the summaries of the stages already done, the optimizer steps they took, and
    the unfinished stage's latest complete checkpoint (None: that stage starts from its beginning)."""

    finished: list[dict] = field(default_factory=list)
    step_offset: int = 0
    next_stage: str | None = None
    checkpoint: Path | None = None

    @property
    def finished_names(self) -> list[str]:
        return [stage["name"] for stage in self.finished]


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def latest_checkpoint(folder: Path) -> Path | None:
    """The highest-numbered `checkpoint-N` in `folder` whose `trainer_state.json` parses; incomplete ones (a kill
    while saving) are skipped with a warning."""
    if not folder.is_dir():
        return None
    found = sorted(
        ((int(m.group(1)), path) for path in folder.iterdir() if (m := _CHECKPOINT.match(path.name)) and path.is_dir()),
        reverse=True,
    )
    for _, path in found:
        if _read_json(path / "trainer_state.json") is not None:
            return path
        logger.warning("skipping incomplete checkpoint %s (no readable trainer_state.json)", path)
    return None


def _holds_a_run(outputs: RunOutputs) -> bool:
    return outputs.summary_path.exists() or outputs.metrics_path.exists()


def _first_difference(old, new, path: str = "") -> str | None:
    """The first key path where two resolved recipes differ (None when equal)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            found = _first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return next(
            (
                d
                for i, (a, b) in enumerate(zip(old, new, strict=True))
                if (d := _first_difference(a, b, f"{path}[{i}]"))
            ),
            None,
        )
    return None if old == new else (path or "(the whole recipe)")


def _check_same_recipe(outputs: RunOutputs, resolved: dict) -> None:
    try:
        old = yaml.safe_load(outputs.resolved_recipe_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        raise AlignError(
            Problem(
                str(outputs.resolved_recipe_path),
                "missing or unreadable; cannot check that the resumed run uses the same recipe, so start a new run",
            )
        ) from None
    difference = _first_difference(old, resolved)
    if difference:
        message = (
            f"the recipe differs from the run's at {difference}; a resumed run must use the recipe (and --set "
            "overrides) it started with, or start a new run with another --output-dir"
        )
        raise AlignError(Problem(str(outputs.resolved_recipe_path), message))


def _finished_stages(outputs: RunOutputs, summary: dict, stage_names: list[str]) -> list[dict]:
    finished = summary.get("stages") or []
    names = [stage.get("name") for stage in finished]
    if names != stage_names[: len(names)]:
        raise AlignError(
            Problem(
                str(outputs.summary_path),
                f"records stages {names}, which are not the first stages of this recipe {stage_names}; start a new run",
            )
        )
    for stage in finished:
        if not (outputs.adapter_dir(stage["name"]) / "adapter_config.json").exists():
            raise AlignError(
                Problem(
                    str(outputs.adapter_dir(stage["name"])),
                    "missing, though summary.json records the stage as done; start a new run",
                )
            )
    return finished


class RunFinished(Exception):
    """`--resume` of a run that already finished: nothing to do (the CLI says so and exits 0)."""


def plan_resume(outputs: RunOutputs, resolved: dict, stage_names: list[str], resume: bool) -> ResumePoint | None:
    """None for a fresh run; a `ResumePoint` for `--resume`. Refuses to start a fresh run over an existing one (its
    metrics would mix), and to resume a gate-stopped or different run. `--resume` is safe to repeat, so a requeued job
    can always pass it: with no run in the folder yet it starts one (None), and on a finished run of the same recipe
    it raises `RunFinished`."""
    if not resume:
        if _holds_a_run(outputs):
            raise AlignError(
                Problem(
                    str(outputs.root),
                    "already holds a run; pass --resume to continue it, "
                    "--overwrite to replace it, or choose another --output-dir",
                )
            )
        return None
    if not outputs.summary_path.exists():
        return _no_run_yet(outputs, resolved)
    summary = _read_json(outputs.summary_path)
    if not isinstance(summary, dict):
        raise AlignError(
            Problem(
                str(outputs.summary_path),
                "unreadable, so what ran here is unknown; --overwrite replaces the run, or choose another --output-dir",
            )
        )
    status = summary.get("status")
    if status == "gate_missed":
        stage = summary.get("failed_stage")
        message = f"this run stopped at a missed gate in stage {stage!r}; start a new run with a changed recipe"
        raise AlignError(Problem(str(outputs.root), message))
    _check_same_recipe(outputs, resolved)
    if status == "finished":
        raise RunFinished(f"{outputs.root}: this run already finished; nothing to resume (--overwrite trains it again)")
    finished = _finished_stages(outputs, summary, stage_names)
    point = ResumePoint(finished, sum(int(stage["steps"]) for stage in finished))
    if len(finished) < len(stage_names):
        point.next_stage = stage_names[len(finished)]
        point.checkpoint = latest_checkpoint(outputs.checkpoints_dir(point.next_stage))
    return point


def _no_run_yet(outputs: RunOutputs, resolved: dict) -> None:
    """`--resume` where no run got as far as its summary (a missing or empty folder, or only the resolved recipe of
    a run killed before its first summary.json): a fresh run starts, unless the recipe written there differs."""
    if outputs.metrics_path.exists():
        raise AlignError(
            Problem(
                str(outputs.summary_path),
                "missing, though metrics.jsonl is there: not a run align "
                "can continue; --overwrite replaces it, or choose another --output-dir",
            )
        )
    if outputs.resolved_recipe_path.exists():
        _check_same_recipe(outputs, resolved)
    if int(os.environ.get("RANK", "0")) == 0:  # every process plans; one says so
        logger.warning("%s: no run to resume there yet (no summary.json); starting a fresh run", outputs.root)
    return None


def trim_metrics(outputs: RunOutputs, point: ResumePoint) -> int:
    """Drop `metrics.jsonl` rows logged after the point the run resumes from (they will be logged again); returns
    how many were dropped."""
    if not outputs.metrics_path.exists():
        return 0
    done = set(point.finished_names)
    kept_step = 0
    if point.checkpoint is not None:
        kept_step = int(_CHECKPOINT.match(point.checkpoint.name).group(1))
    lines = outputs.metrics_path.read_text(encoding="utf-8").splitlines()
    kept = []
    for line in lines:
        row = json.loads(line) if line.strip() else None
        if row is None:
            continue
        resumed_stage = row.get("stage") == point.next_stage
        if row.get("stage") in done or (resumed_stage and row.get("stage_step", kept_step + 1) <= kept_step):
            kept.append(line)
    atomic_write_text(outputs.metrics_path, "".join(line + "\n" for line in kept))
    return len(lines) - len(kept)


def clear_run(outputs: RunOutputs, stage_names: list[str]) -> None:
    """`--overwrite`: remove a previous run's files from the folder — only what align writes there: the run files
    and the stage folders of this recipe and of the old run's summary."""
    old = _read_json(outputs.summary_path) or {}
    names = set(stage_names) | {stage.get("name") for stage in old.get("stages") or [] if stage.get("name")}
    for path in (outputs.summary_path, outputs.metrics_path, outputs.resolved_recipe_path):
        path.unlink(missing_ok=True)
    for tracker_dir in ("tensorboard", "wandb", "report"):
        shutil.rmtree(outputs.root / tracker_dir, ignore_errors=True)
    for name in names:
        if outputs.stage_dir(name).is_dir() and outputs.stage_dir(name).resolve().parent == outputs.root.resolve():
            shutil.rmtree(outputs.stage_dir(name))

"""The one place that sends metrics out: `metrics.jsonl` always, plus the recipe's `report_to` targets (wandb,
tensorboard, or both) through a `Tracker`, one per `align train`.

transformers' own integrations stay off (trl configs get `report_to="none"`): they would open one wandb run per
trainer and restart the x-axis at every stage. Instead the curriculum builds one tracker per run (`make_tracker`, on
the main process only; other ranks get the no-op `Tracker`), and every row written to `metrics.jsonl` is also given
to `Tracker.log`, so all stages share one continuous x-axis: the run-wide `global_step`.

    tracker = make_tracker(recipe.report_to)
    tracker.start(run_name, group, config, outputs.root)       # recipe as config and as a "recipe" artifact
    tracker.log({"stage": "sft", "step": 3, "stage_step": 3, "loss": 1.2})
                                              # wandb: sft/loss, all/loss and trl's train/loss at global_step 3
    tracker.log_generations("sft", 3, probe_records)            # a table per stage and one across stages
    tracker.set_summary(summary)
    tracker.finish("finished")                                  # safe twice, and after a failure
"""

from __future__ import annotations

import importlib.util
import math
import numbers
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from align.errors import AlignError
from align.outputs import RunOutputs

# Row keys that place a row rather than measure something.
_PLACE_KEYS = ("stage", "step", "stage_step")

# Probe record key → generations table column, in display order; other record keys follow, `tuned` read `current`.
_GENERATION_COLUMNS = {
    "prompt": "prompt",
    "reference": "reference",
    "base": "base answer",
    "tuned": "current answer",
    "base_tokens": "base tokens",
    "tuned_tokens": "current tokens",
    "base_key_point_recall": "base key-point recall",
    "tuned_key_point_recall": "current key-point recall",
    "base_loops": "base loops",
    "tuned_loops": "current loops",
    "base_truncated": "base cut at length cap",
    "tuned_truncated": "current cut at length cap",
}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _number(value: Any) -> float | int | None:
    """`value` as a plain number when it is one (bools and strings are not), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def metric_name(key: str) -> str:
    """A row key as a tracker metric name: trainer `evaluate()` keys `eval_loss` → `eval/loss`; others unchanged."""
    return "eval/" + key.removeprefix("eval_") if key.startswith("eval_") else key


def numeric_figures(row: dict[str, Any]) -> dict[str, float | int]:
    """The measured numbers of a metrics row, under tracker metric names (placing keys and non-numbers dropped)."""
    figures = {}
    for key, value in row.items():
        number = _number(value)
        if key not in _PLACE_KEYS and number is not None:
            figures[metric_name(key)] = number
    return figures


def trl_figures(row: dict[str, Any]) -> dict[str, float | int]:
    """A trainer log row's figures under the names transformers' own wandb and tensorboard callbacks give them
    (`rewrite_logs`), so panels made for trl runs find them: `eval_<key>` → `eval/<key>`, any other `<key>` →
    `train/<key>`. Only trainer logs (`MetricsJsonlCallback` rows, which carry `stage_step`) have such names;
    probe rows (after a stage, no `stage_step`) get none."""
    if "stage_step" not in row:
        return {}
    figures = {}
    for key, value in row.items():
        number = _number(value)
        if key not in _PLACE_KEYS and number is not None:
            figures["eval/" + key.removeprefix("eval_") if key.startswith("eval_") else "train/" + key] = number
    return figures


def generation_columns(records: list[dict]) -> list[str]:
    """Record keys in table order: the known ones (`reference` only when some record has one), then any others."""
    present = {key for record in records for key in record}
    known = [key for key in _GENERATION_COLUMNS if key in present]
    return known + sorted(present - set(_GENERATION_COLUMNS))


def column_title(key: str) -> str:
    return _GENERATION_COLUMNS.get(key) or key.replace("tuned_", "current_").replace("_", " ")


class Tracker:
    """The no-op tracker (`report_to: none`, and every process but the main one): accepts every call, sends
    nothing. Subclasses send the same calls to one metrics service."""

    name = "none"
    package: str | None = None  # the package the tracker needs, checked on every process by `make_tracker`

    def __init__(self) -> None:
        self.stage_index: dict[str, int] = {}

    @classmethod
    def check_installed(cls) -> None:
        """`AlignError` (one line, what to install) when the tracker's package is missing."""
        if cls.package and importlib.util.find_spec(cls.package) is None:
            raise AlignError(f"report_to: {cls.name} needs the {cls.package} package: pip install {cls.package}")

    def start(
        self,
        run_name: str,
        group: str,
        config: dict,
        output_dir: Path,
        *,
        stages: list[str] | None = None,
        recipe_file: Path | None = None,
    ) -> None:
        """Open the run. `stages`: the recipe's stage names in order (for `stage_index`); `recipe_file`: the resolved
        recipe to keep as an artifact, by default `output_dir/recipe.resolved.yaml` when it exists."""
        for name in stages or []:
            self._index(name)

    def log(self, row: dict[str, Any]) -> None:
        """One `metrics.jsonl` row (`stage`, run-wide `step`, figures)."""

    def log_generations(self, stage: str, step: int, records: list[dict]) -> None:
        """A stage's probe answers (`OUTPUT/<stage>/probes.jsonl` records) at run-wide `step`."""

    def set_summary(self, summary: dict[str, Any]) -> None:
        """The run's `summary.json` facts (status, total steps, each stage's final figures)."""

    def finish(self, status: str = "finished") -> None:
        """Close the run; `status` other than "finished" marks it failed. Safe to call twice."""

    def _index(self, stage: str) -> int:
        return self.stage_index.setdefault(stage, len(self.stage_index))


_STAGE_FACTS = ("steps", "final_train_loss", "mean_train_loss", "train_runtime_s", "dropped_prompt_over_max_length")


def summary_figures(summary: dict[str, Any]) -> dict[str, Any]:
    """Flat tracker-summary facts from a `summary.json` mapping: top-level facts, then `<stage>/<figure>`."""
    flat: dict[str, Any] = {}
    for key in ("recipe", "model", "status", "total_steps", "world_size", "resumed", "failed_stage"):
        if summary.get(key) is not None:
            flat[key] = summary[key]
    for stage in summary.get("stages") or []:
        name = stage.get("name")
        if not name:
            continue
        for key in _STAGE_FACTS:
            if _number(stage.get(key)) is not None:
                flat[f"{name}/{key}"] = stage[key]
        for group in ("eval", "probe"):
            for key, value in (stage.get(group) or {}).items():
                if _number(value) is not None:
                    flat[f"{name}/{group}/{key.removeprefix(group + '/')}"] = value
        gates = stage.get("gates")
        if gates:
            flat[f"{name}/gates_passed"] = all(g.get("passed") for g in gates)
    return flat


class MultiTracker(Tracker):
    """Several trackers (`report_to: [wandb, tensorboard]`) given every call in turn. `finish` reaches each one even
    when an earlier one fails (the first failure is raised after); a failed `start` closes those already started."""

    def __init__(self, trackers: list[Tracker]) -> None:
        super().__init__()
        self.trackers = trackers
        self.name = "+".join(tracker.name for tracker in trackers)

    def start(self, run_name, group, config, output_dir, *, stages=None, recipe_file=None) -> None:
        """Start each tracker; when one fails to start, close those already started (marked failed) and re-raise."""
        try:
            for tracker in self.trackers:
                tracker.start(run_name, group, config, output_dir, stages=stages, recipe_file=recipe_file)
        except BaseException:
            self.finish("failed")
            raise

    def log(self, row: dict[str, Any]) -> None:
        for tracker in self.trackers:
            tracker.log(row)

    def log_generations(self, stage: str, step: int, records: list[dict]) -> None:
        for tracker in self.trackers:
            tracker.log_generations(stage, step, records)

    def set_summary(self, summary: dict[str, Any]) -> None:
        for tracker in self.trackers:
            tracker.set_summary(summary)

    def finish(self, status: str = "finished") -> None:
        failure = None
        for tracker in self.trackers:
            try:
                tracker.finish(status)
            except Exception as exc:  # noqa: BLE001 — the other trackers still close their runs
                failure = failure or exc
        if failure is not None:
            raise failure


def tracker_names(report_to: str | list[str]) -> list[str]:
    """The trackers `report_to` asks for (a name or a list of names), `none` dropped; `AlignError` for an unknown
    name (recipes are checked at load time; this guards other callers)."""
    from align.tracker_backends import TRACKERS  # the backends import wandb/tensorboard machinery: only when asked

    names = [report_to] if isinstance(report_to, str) else list(report_to)
    for name in names:
        if name not in TRACKERS:
            raise AlignError(f"report_to: {name!r} is not one of {', '.join(TRACKERS)}")
    return [name for name in names if name != "none"]


def make_tracker(report_to: str | list[str], *, main_process: bool | None = None) -> Tracker:
    """The tracker(s) `report_to` names, for the main process; the no-op tracker for every other process. A missing
    package is an `AlignError` on every process, so no rank goes on training while the main one stops."""
    from align.tracker_backends import TRACKERS

    names = tracker_names(report_to)
    for name in names:
        TRACKERS[name].check_installed()
    if main_process is None:
        from align.runtime import process_state

        main_process = process_state().is_main_process
    if not main_process or not names:
        return Tracker()
    trackers = [TRACKERS[name]() for name in names]
    return trackers[0] if len(trackers) == 1 else MultiTracker(trackers)


class MetricsJsonlCallback(TrainerCallback):
    """Appends each `on_log` to `OUTPUT/metrics.jsonl` with the stage name and a run-wide global step, and gives the
    same row to `tracker` (the no-op one by default).

    `step_offset` is the number of optimizer steps taken by earlier stages, so steps never restart at a stage
    boundary. Only the main process writes.
    """

    def __init__(self, outputs: RunOutputs, stage: str, step_offset: int, tracker: Tracker | None = None):
        self.outputs = outputs
        self.stage = stage
        self.step_offset = step_offset
        self.tracker = tracker or Tracker()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        row = {"stage": self.stage, "step": self.step_offset + state.global_step, "stage_step": state.global_step}
        self.outputs.append_metrics({**row, **{key: _json_safe(value) for key, value in logs.items()}})
        self.tracker.log({**row, **logs})

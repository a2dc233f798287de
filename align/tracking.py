"""The one place that sends metrics out: `metrics.jsonl` always, plus the recipe's `report_to` target (wandb,
tensorboard) through a `Tracker`, one per `align train`.

transformers' own integrations stay off (trl configs get `report_to="none"`): they would open one wandb run per
trainer and restart the x-axis at every stage. Instead the curriculum builds one tracker per run (`make_tracker`, on
the main process only; other ranks get the no-op `Tracker`), and every row written to `metrics.jsonl` is also given
to `Tracker.log`, so all stages share one continuous x-axis: the run-wide `global_step`.

    tracker = make_tracker(recipe.report_to)
    tracker.start(run_name, group, config, outputs.root)       # recipe as config and as a "recipe" artifact
    tracker.log({"stage": "sft", "step": 3, "loss": 1.2})       # wandb: sft/loss, all/loss at global_step 3
    tracker.log_generations("sft", 3, probe_records)            # a table per stage and one across stages
    tracker.set_summary(summary)
    tracker.finish("finished")                                  # safe twice, and after a failure
"""

from __future__ import annotations

import importlib.util
import logging
import math
import numbers
import os
import re
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from align.errors import AlignError
from align.outputs import RunOutputs

logger = logging.getLogger(__name__)

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


def generation_columns(records: list[dict]) -> list[str]:
    """Record keys in table order: the known ones (`reference` only when some record has one), then any others."""
    present = {key for record in records for key in record}
    known = [key for key in _GENERATION_COLUMNS if key in present]
    return known + sorted(present - set(_GENERATION_COLUMNS))


def _column_title(key: str) -> str:
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

    def start(self, run_name: str, group: str, config: dict, output_dir: Path, *, stages: list[str] | None = None,
              recipe_file: Path | None = None) -> None:  # fmt: skip
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


def _offline_hint(output_dir: Path) -> str:
    folder = output_dir / "wandb"
    return (f"wandb: no API key found, logging offline to {folder}; upload later with "
            f"`wandb sync {folder}/offline-run-*`, or set WANDB_API_KEY (or WANDB_MODE) before training")  # fmt: skip


def _wandb_credentials_configured() -> bool:
    """Whether wandb would find an API key: the environment, `~/.netrc` (or $NETRC), or wandb's settings file."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    try:  # wandb's own lookup; private, so a change in wandb only costs the offline fallback
        import wandb
        from wandb.sdk.lib import wbauth

        settings = wandb.setup().settings
        return bool(settings.api_key or wbauth.session_credentials(host=settings.base_url)
                    or wbauth.read_netrc_auth(host=settings.base_url))  # fmt: skip
    except Exception:  # noqa: BLE001 — an unreadable netrc means no key we can use
        return False


class WandbTracker(Tracker):
    """One wandb run per `align train`: every figure as `<stage>/<key>` and `all/<key>` against `global_step`, the
    recipe as config and as a `recipe` artifact, probe answers as tables. Offline (with one hint) without an API key."""

    name = "wandb"
    package = "wandb"

    def __init__(self) -> None:
        super().__init__()
        self.run = None
        self.stage: str | None = None
        self.generations: list[dict] = []  # every stage's probe rows, for the cross-stage table
        self._failed_once = False

    def start(self, run_name: str, group: str, config: dict, output_dir: Path, *, stages: list[str] | None = None,
              recipe_file: Path | None = None) -> None:  # fmt: skip
        super().start(run_name, group, config, output_dir, stages=stages)
        try:
            import wandb
        except ImportError:
            raise AlignError("report_to: wandb needs the wandb package: pip install wandb") from None
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        mode = None
        if not os.environ.get("WANDB_MODE") and not _wandb_credentials_configured():
            mode = "offline"
            logger.warning(_offline_hint(output_dir))
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "align"),
            name=run_name,
            group=group,
            job_type="train",
            config={**config, "stage_names": list(self.stage_index)},
            dir=output_dir,
            mode=mode,
        )
        self.run.define_metric("global_step")
        self.run.define_metric("*", step_metric="global_step")
        recipe_file = Path(recipe_file) if recipe_file else RunOutputs(output_dir).resolved_recipe_path
        if recipe_file.is_file():
            artifact = wandb.Artifact(_artifact_name(f"recipe-{group}"), type="recipe",
                                      metadata={"run_name": run_name, "file": recipe_file.name})  # fmt: skip
            artifact.add_file(str(recipe_file), name=recipe_file.name)
            self.run.log_artifact(artifact)

    def _enter_stage(self, stage: str) -> int:
        index = self._index(stage)
        if stage != self.stage:
            self.stage = stage
            self.run.config.update({"stage": stage, "stage_index": index}, allow_val_change=True)
        return index

    def log(self, row: dict[str, Any]) -> None:
        if self.run is None:
            return
        stage = str(row.get("stage", "run"))
        figures = numeric_figures(row)
        if not figures:
            return
        payload: dict[str, Any] = {"global_step": int(row.get("step", 0))}
        try:
            payload["stage_index"] = self._enter_stage(stage)
            if "stage_step" in row:
                payload["stage_step"] = row["stage_step"]
            for key, value in figures.items():
                payload[f"{stage}/{key}"] = value
                payload[f"all/{key}"] = value
            self.run.log(payload)
        except Exception as exc:  # noqa: BLE001 — a tracker hiccup must not end hours of training
            self._warn_once(exc)

    def log_generations(self, stage: str, step: int, records: list[dict]) -> None:
        if self.run is None or not records:
            return
        import wandb

        rows = [{"stage": stage, "step": int(step), **record} for record in records]
        self.generations.extend(rows)
        try:
            self._enter_stage(stage)
            # A new Table each time, holding every stage so far: the latest `generations/all` compares stages side by
            # side in one file (INCREMENTAL tables store only each step's new rows).
            self.run.log({f"generations/{stage}": _wandb_table(wandb, rows),
                          "generations/all": _wandb_table(wandb, self.generations),
                          "global_step": int(step)})  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            self._warn_once(exc)

    def set_summary(self, summary: dict[str, Any]) -> None:
        if self.run is None:
            return
        self.run.summary.update(summary_figures(summary))

    def finish(self, status: str = "finished") -> None:
        run, self.run = self.run, None
        if run is None:
            return
        try:
            run.summary["status"] = status
        finally:
            run.finish(exit_code=0 if status == "finished" else 1)

    def _warn_once(self, exc: Exception) -> None:
        if not self._failed_once:
            self._failed_once = True
            logger.warning("wandb logging failed (%s); metrics.jsonl still has every figure", exc)


def _artifact_name(name: str) -> str:
    """wandb artifact names allow letters, digits, `-`, `_` and `.`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "recipe"


def _wandb_table(wandb, rows: list[dict]):
    keys = ["stage", "step"] + generation_columns([{k: v for k, v in r.items() if k not in ("stage", "step")}
                                                   for r in rows])  # fmt: skip
    return wandb.Table(columns=[_column_title(k) for k in keys], data=[[r.get(k) for k in keys] for r in rows])


def _markdown_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def generations_markdown(records: list[dict]) -> str:
    """Probe records as a markdown table (tensorboard's text plugin renders it)."""
    keys = generation_columns(records)
    lines = ["| " + " | ".join(_column_title(k) for k in keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_markdown_cell(r.get(k)) for k in keys) + " |" for r in records]
    return "\n".join(lines)


class TensorBoardTracker(Tracker):
    """Event files under `OUTPUT/tensorboard/`: `<stage>/<key>` and `all/<key>` scalars at the run-wide step, the
    recipe as text, probe answers as markdown tables."""

    name = "tensorboard"
    package = "tensorboard"

    def __init__(self) -> None:
        super().__init__()
        self.writer = None

    @staticmethod
    def _make_writer(log_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise AlignError("report_to: tensorboard needs the tensorboard package: pip install tensorboard") from None
        return SummaryWriter(log_dir=str(log_dir))

    def start(self, run_name: str, group: str, config: dict, output_dir: Path, *, stages: list[str] | None = None,
              recipe_file: Path | None = None) -> None:  # fmt: skip
        super().start(run_name, group, config, output_dir, stages=stages)
        output_dir = Path(output_dir)
        self.writer = self._make_writer(output_dir / "tensorboard")
        recipe_file = Path(recipe_file) if recipe_file else RunOutputs(output_dir).resolved_recipe_path
        if recipe_file.is_file():
            text = recipe_file.read_text(encoding="utf-8")
            self.writer.add_text("recipe", f"run `{run_name}` (group `{group}`)\n\n```yaml\n{text}\n```", 0)

    def log(self, row: dict[str, Any]) -> None:
        if self.writer is None:
            return
        stage = str(row.get("stage", "run"))
        step = int(row.get("step", 0))
        figures = numeric_figures(row)
        if figures:
            self.writer.add_scalar("stage_index", self._index(stage), step)
        for key, value in figures.items():
            self.writer.add_scalar(f"{stage}/{key}", value, step)
            self.writer.add_scalar(f"all/{key}", value, step)

    def log_generations(self, stage: str, step: int, records: list[dict]) -> None:
        if self.writer is None or not records:
            return
        self.writer.add_text(f"generations/{stage}", generations_markdown(records), int(step))

    def set_summary(self, summary: dict[str, Any]) -> None:
        if self.writer is None:
            return
        facts = summary_figures(summary)
        self.writer.add_text("summary", "\n".join(f"- {k}: {v}" for k, v in facts.items()), summary.get("total_steps"))

    def finish(self, status: str = "finished") -> None:
        writer, self.writer = self.writer, None
        if writer is None:
            return
        writer.add_text("status", status)
        writer.close()


TRACKERS: dict[str, type[Tracker]] = {"none": Tracker, "wandb": WandbTracker, "tensorboard": TensorBoardTracker}


def make_tracker(report_to: str, *, main_process: bool | None = None) -> Tracker:
    """The tracker `report_to` names, for the main process; the no-op tracker for every other process. A missing
    package is an `AlignError` on every process, so no rank goes on training while the main one stops."""
    if report_to not in TRACKERS:
        raise AlignError(f"report_to: {report_to!r} is not one of {', '.join(TRACKERS)}")
    TRACKERS[report_to].check_installed()
    if main_process is None:
        from align.runtime import process_state

        main_process = process_state().is_main_process
    return TRACKERS[report_to]() if main_process else Tracker()


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

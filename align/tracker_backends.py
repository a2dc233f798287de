"""The trackers behind `report_to`: wandb (one run per `align train`, every stage on one `global_step` axis, the
recipe as config and artifact, generation tables) and tensorboard (event files in OUTPUT/tensorboard/). The
interface, the no-op tracker and the choice of them live in `align.tracking`.

Metric names, in both: `<stage>/<key>` and `all/<key>` for every figure (held-out `eval_<key>` as `eval/<key>`), and
for trainer logs also the names transformers' own integrations use (`align.tracking.trl_figures`): `train/<key>`
and `eval/<key>`; wandb adds `train/global_step`, the run-wide step, the x-axis of trl's panels."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from align.errors import AlignError
from align.outputs import RunOutputs
from align.tracking import Tracker, column_title, generation_columns, numeric_figures, summary_figures, trl_figures

logger = logging.getLogger(__name__)


def wandb_dir(output_dir: Path) -> Path:
    """The folder wandb writes its run folder `wandb/<run>` into: $WANDB_DIR when set (wandb's own convention),
    else the run's output folder."""
    return Path(os.environ.get("WANDB_DIR") or output_dir)


def _offline_hint(folder: Path) -> str:
    folder = folder / "wandb"
    return (
        f"wandb: no API key found, logging offline to {folder}; upload later with "
        f"`wandb sync {folder}/offline-run-*`, or set WANDB_API_KEY (or WANDB_MODE) before training"
    )


def _wandb_credentials_configured() -> bool:
    """Whether wandb would find an API key: the environment, `~/.netrc` (or $NETRC), or wandb's settings file."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    try:  # wandb's own lookup; private, so a change in wandb only costs the offline fallback
        import wandb
        from wandb.sdk.lib import wbauth

        settings = wandb.setup().settings
        return bool(
            settings.api_key
            or wbauth.session_credentials(host=settings.base_url)
            or wbauth.read_netrc_auth(host=settings.base_url)
        )
    except Exception:  # noqa: BLE001 — an unreadable netrc means no key we can use
        return False


class WandbTracker(Tracker):
    """One wandb run per `align train` (under $WANDB_DIR, else OUTPUT/wandb/): every figure as `<stage>/<key>` and
    `all/<key>` (trainer logs also as trl's `train/<key>`, `eval/<key>`) against `global_step`, the recipe as config
    and as a `recipe` artifact, probe answers as tables. Offline (with one hint) without an API key."""

    name = "wandb"
    package = "wandb"

    def __init__(self) -> None:
        super().__init__()
        self.run = None
        self.stage: str | None = None
        self.generations: list[dict] = []  # every stage's probe rows, for the cross-stage table
        self._failed_once = False

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
        super().start(run_name, group, config, output_dir, stages=stages)
        try:
            import wandb
        except ImportError:
            raise AlignError("report_to: wandb needs the wandb package: pip install wandb") from None
        output_dir = Path(output_dir)
        folder = wandb_dir(output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        mode = None
        if not os.environ.get("WANDB_MODE") and not _wandb_credentials_configured():
            mode = "offline"
            logger.warning(_offline_hint(folder))
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "align"),
            name=run_name,
            group=group,
            job_type="train",
            config={**config, "stage_names": list(self.stage_index)},
            dir=folder,
            mode=mode,
        )
        self.run.define_metric("global_step")
        self.run.define_metric("train/global_step")
        self.run.define_metric("*", step_metric="global_step")
        recipe_file = Path(recipe_file) if recipe_file else RunOutputs(output_dir).resolved_recipe_path
        if recipe_file.is_file():
            artifact = wandb.Artifact(
                _artifact_name(f"recipe-{group}"),
                type="recipe",
                metadata={"run_name": run_name, "file": recipe_file.name},
            )
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
        step = int(row.get("step", 0))
        payload: dict[str, Any] = {"global_step": step, "train/global_step": step}
        try:
            payload["stage_index"] = self._enter_stage(stage)
            if "stage_step" in row:
                payload["stage_step"] = row["stage_step"]
            for key, value in figures.items():
                payload[f"{stage}/{key}"] = value
                payload[f"all/{key}"] = value
            payload.update(trl_figures(row))
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
            self.run.log(
                {
                    f"generations/{stage}": _wandb_table(wandb, rows),
                    "generations/all": _wandb_table(wandb, self.generations),
                    "global_step": int(step),
                }
            )
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
    keys = ["stage", "step"] + generation_columns(
        [{k: v for k, v in r.items() if k not in ("stage", "step")} for r in rows]
    )
    return wandb.Table(columns=[column_title(k) for k in keys], data=[[r.get(k) for k in keys] for r in rows])


def _markdown_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def generations_markdown(records: list[dict]) -> str:
    """Probe records as a markdown table (tensorboard's text plugin renders it)."""
    keys = generation_columns(records)
    lines = ["| " + " | ".join(column_title(k) for k in keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_markdown_cell(r.get(k)) for k in keys) + " |" for r in records]
    return "\n".join(lines)


class TensorBoardTracker(Tracker):
    """Event files under `OUTPUT/tensorboard/`: `<stage>/<key>` and `all/<key>` scalars (trainer logs also as trl's
    `train/<key>`, `eval/<key>`) at the run-wide step, the recipe as text, probe answers as markdown tables."""

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
        for key, value in trl_figures(row).items():
            self.writer.add_scalar(key, value, step)

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

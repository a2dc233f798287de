"""The one place that lays out and writes a run's output folder.

    OUTPUT/recipe.resolved.yaml   the recipe as run (overrides applied)
    OUTPUT/metrics.jsonl          one JSON object per logged step: stage, global step, trl's keys
    OUTPUT/summary.json           per stage: name, kind, steps, final train loss, held-out eval figures
    OUTPUT/<stage>/adapter/       the stage's final PEFT adapter
    OUTPUT/<stage>/trainer_config.json   the stage's effective trl config (align's defaults applied, secrets masked)
    OUTPUT/<stage>/checkpoints/   trl/transformers checkpoints while the stage trains

Final results are written under a temporary name and renamed, so a killed run never leaves a half-written file
that looks finished.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from align.errors import AlignError, Problem
from align.redaction import redact_text

#: Below this much free space a run is refused before training; below LOW_FREE_BYTES it warns. Checkpoints of a
#: LoRA adapter are megabytes, but the optimizer state and a larger model's adapter grow quickly.
MIN_FREE_BYTES = 64 * 2**20
LOW_FREE_BYTES = 2 * 2**30
logger = logging.getLogger(__name__)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same folder, fsync and a rename: a reader never sees half
    a file, and a killed writer leaves the old file (or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file 0600; results are meant to be read by others (reviewers, CI artefacts).
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write_bytes` of UTF-8 `text`, with secrets masked first."""
    atomic_write_bytes(path, redact_text(text).encode("utf-8"))


class RunOutputs:
    """Paths and writers for one run's output folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.root / "summary.json"

    @property
    def resolved_recipe_path(self) -> Path:
        return self.root / "recipe.resolved.yaml"

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def adapter_dir(self, stage: str) -> Path:
        return self.stage_dir(stage) / "adapter"

    def checkpoints_dir(self, stage: str) -> Path:
        return self.stage_dir(stage) / "checkpoints"

    def trainer_config_path(self, stage: str) -> Path:
        return self.stage_dir(stage) / "trainer_config.json"

    def prepare(self) -> None:
        """Create the folder and prove it is writable before any training starts; warn when little space is left."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise AlignError(
                Problem(
                    str(self.root), f"output folder is not writable ({exc.strerror}); choose another with --output-dir"
                )
            ) from None
        free = shutil.disk_usage(self.root).free
        if free < MIN_FREE_BYTES:
            message = (
                f"only {free / 2**20:.0f} MiB free; a run needs at least {MIN_FREE_BYTES / 2**20:.0f} MiB for "
                "adapters and checkpoints: free some space or choose another --output-dir"
            )
            raise AlignError(Problem(str(self.root), message))
        if free < LOW_FREE_BYTES:
            logger.warning("%s: only %.1f GiB free; checkpoints of a large model may not fit", self.root, free / 2**30)

    def write_resolved_recipe(self, raw: dict) -> None:
        atomic_write_text(self.resolved_recipe_path, yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_text(self.summary_path, json.dumps(summary, indent=2, sort_keys=False) + "\n")

    def write_trainer_config(self, stage: str, config) -> Path:
        """The stage's trl config as it trains (`config.to_dict()`: align's defaults, the recipe's `training`, what
        the stage runner set) to `OUTPUT/<stage>/trainer_config.json`. Secrets are masked twice: transformers names
        every `*_token` field's value `<FIELD_NAME>`, and `atomic_write_text` masks secret environment values anywhere
        else. Values JSON cannot hold (a dtype, a path object) are written as their text."""
        path = self.trainer_config_path(stage)
        atomic_write_text(path, json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str) + "\n")
        return path

    def append_metrics(self, row: dict[str, Any]) -> None:
        self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        with self.metrics_path.open("a", encoding="utf-8") as handle:
            handle.write(redact_text(json.dumps(row)) + "\n")

    def write_jsonl(self, path: Path, rows: list[dict[str, Any]]) -> None:
        """`rows` as JSON lines at `path`, atomically."""
        atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in rows))

    def save_adapter(self, model, stage: str, state_dict: dict | None = None) -> Path:
        """Save the active PEFT adapter of `model` as `OUTPUT/<stage>/adapter/`, atomically; `state_dict`: the
        adapter's whole tensors when the model is sharded (`align.engines.gathered_adapter_state`)."""
        target = self.adapter_dir(stage)
        staging = Path(tempfile.mkdtemp(prefix=".adapter-", dir=self.stage_dir(stage)))
        try:
            extra = {} if state_dict is None else {"state_dict": state_dict}
            model.save_pretrained(staging, selected_adapters=["default"], safe_serialization=True, **extra)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return target

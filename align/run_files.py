"""An `align train` output folder as data: `summary.json`, `metrics.jsonl`, each stage's span of run-wide steps and
one metric's series — what `align report` draws, read with one-line errors that name the broken file."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from align.errors import AlignError, Problem


@dataclass(frozen=True)
class StageSpan:
    """One stage's run-wide optimizer steps, `first_step`..`last_step` inclusive (empty when it took no step)."""

    name: str
    kind: str
    first_step: int
    last_step: int

    @property
    def start(self) -> float:
        """Where the stage's region starts on a step axis: half a step before its first step."""
        return self.first_step - 0.5

    @property
    def end(self) -> float:
        return self.last_step + 0.5


@dataclass
class Run:
    """What the report reads: the output folder, its summary, its metrics rows and the stages' step spans."""

    root: Path
    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    spans: list[StageSpan] = field(default_factory=list)


def _require(path: Path) -> None:
    if not path.is_file():
        raise AlignError(Problem(str(path), "not found; give the output folder of an `align train` run"))


def read_json_file(path: Path) -> Any:
    """A JSON file's value; `AlignError` (one line naming the file) when it is missing or broken."""
    _require(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AlignError(Problem(str(path), f"unreadable ({_one_line(exc)})")) from None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def read_summary(path: Path) -> dict[str, Any]:
    """`summary.json` as a dict with a `stages` list; `AlignError` (one line naming the file) otherwise."""
    summary = read_json_file(path)
    if not isinstance(summary, dict) or not isinstance(summary.get("stages"), list):
        raise AlignError(Problem(str(path), "is not an `align train` summary (no `stages` list)"))
    return summary


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """`metrics.jsonl` rows, each a dict with a numeric run-wide `step`; `AlignError` naming the file and line."""
    _require(path)
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AlignError(Problem(str(path), f"unreadable ({_one_line(exc)})")) from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AlignError(Problem(str(path), f"not valid JSON ({exc.msg})", number)) from None
        if not isinstance(row, dict) or not isinstance(row.get("step"), (int, float)):
            raise AlignError(Problem(str(path), "each row needs a numeric run-wide step", number, "step"))
        rows.append(row)
    return rows


def stage_spans(summary: dict[str, Any], rows: list[dict[str, Any]] = ()) -> list[StageSpan]:
    """Each stage's steps, in run order: from summary.json's `first_step`/`last_step`; for a stage summary.json
    lacks (still training, or an old summary), from the steps its metrics rows carry."""
    spans, seen = [], set()
    for stage in summary.get("stages", []):
        name = str(stage.get("name"))
        steps = [int(r["step"]) for r in rows if r.get("stage") == name]
        first = stage["first_step"] if stage.get("first_step") is not None else min(steps, default=1)
        last = stage["last_step"] if stage.get("last_step") is not None else max(steps, default=first - 1)
        spans.append(StageSpan(name, str(stage.get("kind", "?")), int(first), int(last)))
        seen.add(name)
    for row in rows:
        name = row.get("stage")
        if name is not None and name not in seen:
            steps = [int(r["step"]) for r in rows if r.get("stage") == name]
            spans.append(StageSpan(str(name), "running", min(steps), max(steps)))
            seen.add(name)
    return spans


def boundary_steps(spans: list[StageSpan]) -> list[float]:
    """x positions (in steps) of the vertical lines between consecutive stages: half a step before each later
    stage's first step, so a line never hides a logged point."""
    return [span.start for span in spans[1:]]


def series(rows: list[dict[str, Any]], key: str, stage: str | None = None) -> tuple[list[int], list[float]]:
    """(steps, values) of `key` over the rows (of one `stage` if given), finite numbers only, in step order."""
    points = sorted(
        (int(r["step"]), float(r[key]))
        for r in rows
        if (stage is None or r.get("stage") == stage) and isinstance(r.get(key), (int, float)) and math.isfinite(r[key])
    )
    return [p[0] for p in points], [p[1] for p in points]


def read_jsonl_records(path: Path) -> list[dict]:
    """Every JSON line of a file (e.g. probes.jsonl); `AlignError` naming the file when one is broken."""
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AlignError(Problem(str(path), f"unreadable ({_one_line(exc)})")) from None


def load_run(output_dir: str | Path) -> Run:
    """An output folder's summary, metrics rows and stage spans; `AlignError` naming a missing or broken file."""
    root = Path(output_dir)
    if not root.is_dir():
        raise AlignError(Problem(str(root), "not a folder; give the output folder of an `align train` run"))
    summary = read_summary(root / "summary.json")
    rows = read_metrics(root / "metrics.jsonl")
    return Run(root, summary, rows, stage_spans(summary, rows))

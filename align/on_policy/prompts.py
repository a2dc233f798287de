"""The prompts an on-policy stage samples answers to: `prompt`, optional `key_points` and `reference`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from align.data.formats import Location, read_records
from align.errors import AlignError

PROMPT_FIELDS = ("prompt", "key_points", "reference")


@dataclass(frozen=True)
class PromptRow:
    """One prompt to sample: its text, the phrases a complete answer contains (None when not given), a reference
    answer (None when not given), and where it came from (`file:line`)."""

    prompt: str
    key_points: tuple[str, ...] | None
    reference: str | None
    location: str


def _field(data: dict, columns: Mapping[str, str], name: str):
    return data.get(columns.get(name, name))


def _prompt_row(data: dict, location: Location, columns: Mapping[str, str]) -> PromptRow:
    """One record as a `PromptRow`; a missing prompt or a malformed optional field names the line and field."""
    prompt = _field(data, columns, "prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise AlignError(location.problem("needs a non-empty string", columns.get("prompt", "prompt")))
    key_points = _field(data, columns, "key_points")
    if key_points in (None, []):
        key_points = None
    elif not isinstance(key_points, list) or not all(isinstance(p, str) and p.strip() for p in key_points):
        key = columns.get("key_points", "key_points")
        raise AlignError(location.problem("must be a list of non-empty strings (phrases a complete answer has)", key))
    reference = _field(data, columns, "reference")
    if reference is not None and not (isinstance(reference, str) and reference.strip()):
        raise AlignError(
            location.problem("must be a non-empty string (a good answer)", columns.get("reference", "reference"))
        )
    return PromptRow(prompt, tuple(key_points) if key_points else None, reference, str(location))


def load_prompt_rows(
    path: str | Path, columns: Mapping[str, str] | None = None, limit: int | None = None, base_dir: Path | None = None
) -> list[PromptRow]:
    """The first `limit` (all when None) prompt rows of a JSONL, JSON, CSV or Parquet file, in file order.

    `columns` maps align's names (`prompt`, `key_points`, `reference`) to the file's. A prompt repeated in the file
    is read once (sampling it twice would only double its pairs). No prompts at all is an error.
    """
    columns = dict(columns or {})
    rows, seen = [], set()
    for record in read_records(str(path), base_dir):
        if record.problem is not None:
            raise AlignError(record.problem)
        row = _prompt_row(record.data, Location(record.source, record.number, record.by_line), columns)
        if row.prompt.strip() in seen:
            continue
        seen.add(row.prompt.strip())
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise AlignError(f"{path}: has no prompts")
    return rows

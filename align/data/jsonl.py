"""Read JSONL files row by row, naming the file and line of anything wrong."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from align.errors import AlignError, Problem


def jsonl_lines(path: str | Path) -> Iterator[tuple[int, dict | Problem]]:
    """Yield `(line_number, object)` for each non-blank line, or `(line_number, Problem)` for a line that is not
    UTF-8, not JSON or not a JSON object (code `unreadable`); the lines after a bad one are still read. A file that
    cannot be opened raises `AlignError`."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise AlignError(Problem(str(path), f"cannot read: {exc.strerror}")) from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            parsed = _parse_line(raw, str(path), number)
            if parsed is not None:
                yield number, parsed


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object's mapping; a repeated key raises (`json` would keep the last value and drop the first silently)."""
    obj: dict = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"repeats the key {key!r} (JSON keeps only the last value)")
        obj[key] = value
    return obj


def _parse_line(raw: bytes, source: str, number: int) -> dict | Problem | None:
    try:
        text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        return Problem(source, f"not UTF-8 (byte {exc.start}); re-save as UTF-8", number, code="unreadable")
    if not text.strip():
        return None
    try:
        obj = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        return Problem(source, f"broken JSON: {exc.msg} at column {exc.colno}", number, code="unreadable")
    except (ValueError, RecursionError) as exc:
        # Valid JSON that Python will not build: an integer of more than 4300 digits (ValueError), or arrays nested
        # thousands deep (RecursionError). Both crashed the reader with a traceback; they are one bad line.
        return Problem(source, f"unreadable JSON: {str(exc).split(';')[0]}", number, code="unreadable")
    if not isinstance(obj, dict):
        return Problem(source, f"each line must be a JSON object, got {type(obj).__name__}", number, code="unreadable")
    return obj


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield `(line_number, object)` for each non-blank line; the first bad line raises `AlignError` naming it."""
    for number, obj in jsonl_lines(path):
        if isinstance(obj, Problem):
            raise AlignError(obj)
        yield number, obj

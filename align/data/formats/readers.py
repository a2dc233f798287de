"""Raw records from any container we read: JSONL, JSON, CSV, Parquet, a `datasets.save_to_disk` folder, or a Hub id.

A record is one mapping plus where it came from; making it a preference row is the normalisers' job.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from align.data.jsonl import jsonl_lines
from align.errors import AlignError, Problem


@dataclass(frozen=True)
class Location:
    """Where one record came from: `source` (a file or Hub id) and a 1-based `number`, which is a line number when
    `by_line` (JSONL) and a row index otherwise."""

    source: str
    number: int
    by_line: bool = False

    def __str__(self) -> str:
        return f"{self.source}:{self.number}" if self.by_line else f"{self.source} row {self.number}"

    def problem(self, message: str, key: str | None = None, code: str | None = None) -> Problem:
        """A `Problem` here; line numbers go in `Problem.line` so they print `file:12` like every other JSONL error."""
        if self.by_line:
            return Problem(self.source, message, self.number, key, code)
        return Problem(str(self), message, None, key, code)


@dataclass(frozen=True)
class Record:
    """One raw row: `number` (1-based line for JSONL, 1-based row index otherwise), its `data`, and `location`
    ("file.jsonl:12", "file.csv row 12") for messages; `source` and `by_line` rebuild the `Location`.

    A row that could not be read at all (a broken JSON line, a CSV row with the wrong number of cells) is still a
    record, with empty `data` and the reason in `problem`: the reader goes on, and the caller decides whether that
    stops the run or is counted and dropped.
    """

    number: int
    data: dict
    location: str
    source: str = ""
    by_line: bool = False
    problem: Problem | None = None

    @property
    def where(self) -> Location:
        return Location(self.source, self.number, self.by_line)


def _record(source: str, number: int, data: dict, by_line: bool = False) -> Record:
    return Record(number, data, str(Location(source, number, by_line)), source, by_line)


def _unreadable(source: str, number: int, message: str, by_line: bool = False) -> Record:
    where = Location(source, number, by_line)
    return Record(number, {}, str(where), source, by_line, where.problem(message, code="unreadable"))


Reader = Callable[[Path], Iterator[Record]]
# File suffix → reader. Folders (`save_to_disk`) and Hub ids have no suffix, so `read_records` handles them itself.
READERS: dict[str, Reader] = {}
SAVED_DATASET_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
# A Hub id is `name` or `owner/name`; anything else that does not exist (`./x`, `a/b/c`, `x.csv`) was meant as a path.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def register_reader(suffix: str) -> Callable[[Reader], Reader]:
    """Decorator: read files ending in `suffix` (".jsonl") with the decorated function."""

    def decorate(reader: Reader) -> Reader:
        READERS[suffix.lower()] = reader
        return reader

    return decorate


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_text(path: Path) -> str:
    """The whole file as text; `utf-8-sig` because spreadsheet tools write a BOM that would pollute the first column."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AlignError(Problem(str(path), f"cannot read: {exc.strerror}")) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise AlignError(Problem(str(path), f"not UTF-8 (byte {exc.start}); re-save as UTF-8", line)) from None


@register_reader(".jsonl")
def read_jsonl_records(path: Path) -> Iterator[Record]:
    """One record per non-blank line; `number` is the line number. A line that is not UTF-8, not JSON or not an
    object is an unreadable record (the lines after it are still read)."""
    for line, obj in jsonl_lines(path):
        if isinstance(obj, Problem):
            yield Record(line, {}, f"{path}:{line}", str(path), True, obj)
        else:
            yield _record(str(path), line, obj, by_line=True)


def _json_rows(document, path: Path) -> list:
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        for key in ("data", "rows"):
            if isinstance(document.get(key), list):
                return document[key]
    raise AlignError(
        Problem(str(path), 'must be a JSON array of row objects, or an object like {"data": [...]} or {"rows": [...]}')
    )


@register_reader(".json")
def read_json_records(path: Path) -> Iterator[Record]:
    """A JSON array of objects, or `{"data": [...]}` / `{"rows": [...]}`; `number` is the 1-based array index."""
    try:
        document = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise AlignError(Problem(str(path), f"broken JSON: {exc.msg} at column {exc.colno}", exc.lineno)) from None
    except (ValueError, RecursionError) as exc:  # a >4300-digit integer, nesting thousands deep: not a traceback
        raise AlignError(Problem(str(path), f"unreadable JSON: {str(exc).split(';')[0]}")) from None
    for number, obj in enumerate(_json_rows(document, path), start=1):
        if isinstance(obj, dict):
            yield _record(str(path), number, obj)
        else:
            yield _unreadable(str(path), number, f"each row must be a JSON object, got {type(obj).__name__}")


def _cell(text: str):
    """A CSV cell, parsed when it holds a JSON list or object (a K-negatives `rejected`, a message list).

    A cell that merely looks bracketed but is not valid JSON ("[citation needed]") stays text: prose may start with [.
    """
    stripped = text.strip()
    if (stripped[:1], stripped[-1:]) in (("[", "]"), ("{", "}")):
        try:
            return json.loads(stripped)
        except (ValueError, RecursionError):  # JSONDecodeError, and JSON Python will not build (huge ints, deep)
            return text
    return text


def _check_header(header: list[str] | None, path: Path) -> None:
    # DictReader keeps only the last of two same-named columns; refuse rather than drop data silently.
    repeated = sorted({name for name in header or [] if (header or []).count(name) > 1})
    if repeated:
        raise AlignError(Problem(str(path), f"the header repeats column(s) {', '.join(repeated)}", 1))


# csv's default cell limit (131072 characters) made a file with one long answer unreadable as a whole.
CSV_FIELD_LIMIT = 2**31 - 1


@register_reader(".csv")
def read_csv_records(path: Path) -> Iterator[Record]:
    """One record per CSV row under a header row; `number` is the 1-based data row (the header is not counted).

    Quoting is strict: a stray quote (`"a"b`) or one left open to the end of the file is an unreadable row, not text
    silently merged with the rows after it; a cell holding a NUL byte (a binary or UTF-16 file) is unreadable too.
    """
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""), strict=True)
    try:
        _check_header(reader.fieldnames, path)
    except csv.Error as exc:
        raise AlignError(Problem(str(path), f"broken CSV: {exc}", reader.line_num)) from None
    number = 0
    while True:
        start = reader.reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # the reader starts afresh on the next line
            number += 1
            yield _unreadable(str(path), number, f"broken CSV on lines {start}-{reader.reader.line_num}: {exc}")
            continue
        number += 1
        # DictReader files surplus cells under None and fills missing ones with None: both mean a broken row.
        cells = len(reader.fieldnames) + len(row[None]) if None in row else sum(v is not None for v in row.values())
        if cells != len(reader.fieldnames):
            yield _unreadable(str(path), number, f"has {cells} cells but the header has {len(reader.fieldnames)}")
        elif any("\x00" in value for value in row.values()):
            yield _unreadable(str(path), number, "holds a NUL byte; is the file binary or UTF-16? Re-save as UTF-8")
        else:
            yield _record(str(path), number, {key: _cell(value) for key, value in row.items()})


@register_reader(".parquet")
def read_parquet_records(path: Path) -> Iterator[Record]:
    """One record per Parquet row; `number` is the 1-based row index."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except (OSError, pa.ArrowException) as exc:
        raise AlignError(Problem(str(path), f"cannot read as Parquet: {_first_line(exc)}")) from None
    for number, obj in enumerate(rows, start=1):
        yield _record(str(path), number, obj)


def _dataset_records(dataset, source: str) -> Iterator[Record]:
    for number, obj in enumerate(dataset, start=1):
        yield _record(source, number, dict(obj))


def _pick_split(dataset, split: str, source: str):
    """The `split` of a DatasetDict (a Dataset is returned as is), naming the splits there are when it is missing."""
    import datasets

    if not isinstance(dataset, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        return dataset, source
    if split not in dataset:
        raise AlignError(Problem(source, f"has no split {split!r}; splits: {', '.join(dataset)}", key="split"))
    return dataset[split], f"{source}[{split}]"


def read_saved_dataset(path: Path, split: str = "train") -> Iterator[Record]:
    """Records of a folder written by `Dataset.save_to_disk` (or `DatasetDict.save_to_disk`: `split` picks one)."""
    import datasets

    try:
        dataset = datasets.load_from_disk(str(path))
    except (OSError, ValueError) as exc:
        raise AlignError(Problem(str(path), f"cannot load the saved dataset: {_first_line(exc)}")) from None
    dataset, source = _pick_split(dataset, split, str(path))
    return _dataset_records(dataset, source)


def read_hub_records(dataset_id: str, split: str = "train") -> Iterator[Record]:
    """Records of a Hugging Face Hub dataset, via `datasets.load_dataset(dataset_id, split=split)`."""
    import datasets

    try:
        dataset = datasets.load_dataset(dataset_id, split=split)
    except Exception as exc:  # noqa: BLE001 - network, auth, missing split or config: all mean "cannot load this id"
        message = f"cannot load from the Hugging Face Hub (split {split!r}): {_first_line(exc)}"
        raise AlignError(Problem(dataset_id, message)) from None
    dataset, source = _pick_split(dataset, split, dataset_id)
    return _dataset_records(dataset, source if source != dataset_id else f"{dataset_id}[{split}]")


def _looks_like_path(text: str, candidate: Path) -> bool:
    """Not an `owner/name` shape, a readable suffix, or `owner` is a local folder (`data/prefs` next to the recipe)."""
    shaped = _HUB_ID.fullmatch(text) and Path(text).suffix.lower() not in READERS
    return not shaped or ("/" in text and candidate.parent.is_dir())


def resolve_input(path_or_id: str, base_dir: Path | None = None) -> Path | None:
    """The existing file or folder `path_or_id` names (relative to `base_dir`), or None when it is a Hub id.

    A string that looks like a path but names nothing is a user error: asking the Hub about it would only turn a typo
    into a confusing network error.
    """
    if not str(path_or_id).strip():
        raise AlignError(Problem("data", "empty path; give a file, a save_to_disk folder or a Hub dataset id"))
    path = Path(path_or_id).expanduser()
    # normpath: messages then name `data/x.jsonl`, not `recipes/tiny/../../data/x.jsonl`.
    candidate = Path(os.path.normpath(path if path.is_absolute() or base_dir is None else Path(base_dir) / path))
    if candidate.exists():
        return candidate
    if _looks_like_path(str(path_or_id), candidate):
        raise AlignError(Problem(str(candidate), "no such file"))
    return None


def read_records(path_or_id: str, base_dir: Path | None = None, split: str = "train") -> Iterator[Record]:
    """Every record of a file, `save_to_disk` folder or Hub dataset, in order.

    The input is opened (and a missing file, unknown suffix or unloadable dataset reported) before this returns;
    records are then read lazily.
    """
    target = resolve_input(str(path_or_id), base_dir)
    if target is None:
        return read_hub_records(str(path_or_id), split)
    if target.is_dir():
        if any((target / marker).exists() for marker in SAVED_DATASET_MARKERS):
            return read_saved_dataset(target, split)
        markers = ", ".join(SAVED_DATASET_MARKERS)
        message = f"is a folder but not one written by datasets' save_to_disk (no {markers})"
        raise AlignError(Problem(str(target), message))
    reader = READERS.get(target.suffix.lower())
    if reader is None:
        known = ", ".join(sorted(READERS))
        message = f"unknown file type {target.suffix!r}; readable: {known}, a save_to_disk folder or a Hub id"
        raise AlignError(Problem(str(target), message))
    return reader(target)

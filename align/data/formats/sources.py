"""Whole sources: read one file, folder or Hub dataset into normalised rows, and mix several sources by weight."""

from __future__ import annotations

import dataclasses
import logging
import math
import random
from collections import Counter
from collections.abc import Iterator, Mapping
from itertools import chain
from pathlib import Path

from align.data.formats.normalise import FIELDS, FORMATS, FormatOptions, ScoredPrompt, detect_format
from align.data.formats.readers import Location, Record, read_records
from align.data.rows import PreferenceRow
from align.errors import AlignError, Problem

logger = logging.getLogger(__name__)


def _check_format(name: str, options: FormatOptions, source: str) -> None:
    """A known format, and `columns` that only map fields that format reads (a typo would otherwise do nothing)."""
    if name not in FORMATS:
        raise AlignError(Problem(source, f"unknown format {name!r}; formats: auto, {', '.join(FORMATS)}", key="format"))
    for ours in options.columns:
        if ours not in FIELDS[name]:
            message = f"format {name!r} has no field {ours!r} to map; its fields: {', '.join(FIELDS[name])}"
            raise AlignError(Problem(source, message, key=f"columns.{ours}"))


def _normalise(record: Record, name: str, options: FormatOptions, first: Record | None):
    """One record in format `name`; with auto-detection (`first` set), a failure also says which format it looks
    like, since one file holds one format and the mismatch is usually the real mistake."""
    try:
        return FORMATS[name](record.data, record.where, options)
    except AlignError as exc:
        if first is None:
            raise
        try:
            looks = detect_format(record, options.columns)
        except AlignError:
            looks = name
        if looks == name:
            raise
        hint = f" (this row looks like {looks!r} data, but {first.location} made the source {name!r})"
        problems = [dataclasses.replace(p, message=p.message + hint) for p in exc.problems]
        raise AlignError(problems) from None


def _same_negatives(rows: list[PreferenceRow], by_line: bool, options: FormatOptions, issues) -> list:
    """One K per source: batches hold K+1 answers per prompt. A row with another K than the first row raises; with
    `issues`, rows whose K differs from the most common K are counted (`invalid`) and left out."""
    k = rows[0].num_rejected if issues is None else Counter(r.num_rejected for r in rows).most_common(1)[0][0]
    first = next(row for row in rows if row.num_rejected == k)
    kept = []
    for row in rows:
        if row.num_rejected == k:
            kept.append(row)
            continue
        message = (
            f"has {row.num_rejected} rejected answers but {Location(first.source, first.line, by_line)} has "
            f"{k}; all rows need the same number"
        )
        key = options.columns.get("rejected", "rejected")
        problem = Location(row.source, row.line, by_line).problem(message, key, "invalid")
        if issues is None:
            raise AlignError(problem)
        issues.add(problem)
    return kept


def _first_readable(records: Iterator[Record], path) -> tuple[list[Record], Record]:
    """The records up to and including the first readable one (unreadable lines before it stay in the list)."""
    head = []
    for record in records:
        head.append(record)
        if record.problem is None:
            return head, record
    if head:
        raise AlignError(Problem(str(path), f"has no readable rows ({len(head)} unreadable; first: {head[0].problem})"))
    raise AlignError(Problem(str(path), "has no rows"))


def _normalise_all(records, name: str, options: FormatOptions, detected: Record | None, issues) -> list:
    """Every record normalised; a bad one raises, or with `issues` is counted there and left out.

    Repeats of an earlier row are found here, in file order, rather than after every row is read: a strict load then
    stops at the first bad row of the file (not at a later broken row when a repeat came first), and the repeat is
    named by its record's own location (`file.csv row 5`; a CSV row number printed as `file.csv:5` read as a line).
    Strict loads check each row's number of rejected answers against the first row's here for the same reason.
    """
    from align.data.issues import answer_key

    rows, seen, first_row = [], {}, None
    for record in records:
        try:
            if record.problem is not None:
                raise AlignError(record.problem)
            row = _normalise(record, name, options, detected)
            if not isinstance(row, ScoredPrompt):
                key = answer_key(row)
                if key in seen:
                    message = f"duplicates {seen[key]} (same prompt and answers); remove it, or set bad_rows: drop"
                    raise AlignError(record.where.problem(message, None, "duplicate"))
                seen[key] = record.location
            if issues is None and isinstance(row, PreferenceRow):
                first_row = first_row or row
                _same_negatives([first_row, row], record.by_line, options, None)
            rows.append(row)
        except AlignError as exc:
            if issues is None:
                raise
            issues.add_error(exc)
    return rows


def load_source(
    path: str | Path,
    format: str = "auto",
    columns: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    split: str = "train",
    *,
    score_key: str | None = None,
    score_weights: Mapping[str, float] | None = None,
    issues=None,
) -> list[PreferenceRow] | list[ScoredPrompt] | list:
    """Every row of one source, normalised: `PreferenceRow`s, `ScoredPrompt`s (`scored`), `CompletionRow`s
    (`completion`).

    `format="auto"` detects the format from the first readable record, then holds every record to it. A bad row
    (unreadable, missing or empty field, wrong type, identical answers, a repeat of an earlier row) raises
    `AlignError` naming file, line or row, and field; with `issues` (an `align.data.issues.RowIssues`) it is counted
    there by kind and left out instead. A source whose rows are all bad is an error either way.
    """
    options = FormatOptions(dict(columns or {}), score_key, score_weights)
    if format != "auto":
        _check_format(format, options, str(path))
    records: Iterator[Record] = read_records(str(path), base_dir, split)
    head, first = _first_readable(records, path)
    name = detect_format(first, options.columns) if format == "auto" else format
    if format == "auto":
        _check_format(name, options, first.source)
    detected = first if format == "auto" else None
    rows = _normalise_all(chain(head, records), name, options, detected, issues)  # repeats dropped there
    if not rows:
        raise AlignError(Problem(str(path), f"has no usable rows: all {issues.total} are bad (see the counts above)"))
    if isinstance(rows[0], PreferenceRow):
        rows = _same_negatives(rows, first.by_line, options, issues)
    return rows


def _apportion(total: int, weights: list[float]) -> list[int]:
    """Shares of `total` proportional to `weights`: each share is total·w/Σw rounded, with ties and rounding drift
    settled by largest remainder so the shares add up to exactly `total` (plain rounding of 3 × 1/3 of 10 gives 9)."""
    exact = [total * w / sum(weights) for w in weights]
    shares = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in by_remainder[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _interleave(parts: list[list], rng: random.Random) -> list:
    """All rows of all parts in a seeded order that keeps each part's own order (a random merge)."""
    labels = [index for index, part in enumerate(parts) for _ in part]
    rng.shuffle(labels)
    iterators = [iter(part) for part in parts]
    return [next(iterators[index]) for index in labels]


def _source_name(rows: list, index: int) -> str:
    first = rows[0] if rows else None
    return getattr(first, "source", "") or f"source {index}"


def _check_mix(sources: list[tuple[list, float]], total: int | None) -> None:
    if not sources:
        raise AlignError(Problem("data", "no sources to mix"))
    for index, (_, weight) in enumerate(sources):
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (0 < weight < math.inf):
            raise AlignError(Problem("data", f"weight {weight!r} must be a positive number", key=f"sources[{index}]"))
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total <= 0):
        raise AlignError(Problem("data", f"total {total!r} must be a positive number of rows", key="total"))


def mix_sources(sources: list[tuple[list, float]], seed: int, total: int | None = None) -> tuple[list, dict]:
    """Rows of several `(rows, weight)` sources in one seeded list, and a report of what each source gave.

    With `total`, each source gives its weighted share of `total` rows, drawn without replacement; a source with
    fewer rows than its share gives all it has (reported as `short_by`, and logged). Without `total`, every row of
    every source is kept and the sources are interleaved in a seeded order (weights do not change counts then).
    """
    _check_mix(sources, total)
    rng = random.Random(seed)
    if total is None:
        shares = [len(rows) for rows, _ in sources]
        parts = [list(rows) for rows, _ in sources]
    else:
        shares = _apportion(total, [float(weight) for _, weight in sources])
        parts = [rng.sample(rows, min(share, len(rows))) for (rows, _), share in zip(sources, shares, strict=True)]
    mixed = _interleave(parts, rng)
    entries = []
    for index, ((rows, weight), share, part) in enumerate(zip(sources, shares, parts, strict=True)):
        entry = {
            "source": _source_name(rows, index),
            "weight": weight,
            "available": len(rows),
            "requested": share,
            "used": len(part),
            "short_by": share - len(part),
        }
        if entry["short_by"]:
            logger.warning(
                "%s has %d rows, fewer than its share of %d; using all of them", entry["source"], len(rows), share
            )
        entries.append(entry)
    report = {"seed": seed, "requested_total": total, "total": len(mixed), "sources": entries}
    return mixed, report

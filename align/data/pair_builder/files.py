"""`align data build` on files: read multi-answer rows, build pairs, write JSONL and the report atomically."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from align.data.formats import ScoredPrompt, load_source
from align.data.formats.readers import resolve_input
from align.data.issues import RowIssues
from align.data.pair_builder.build import build_pairs
from align.data.pair_builder.options import BuildOptions
from align.data.pair_builder.report import BuildReport, report_path
from align.data.rows import PreferenceRow
from align.errors import AlignError, Problem
from align.outputs import atomic_write_text


def _check_paths(input_path: str | Path, output: Path, base_dir: Path | None) -> None:
    """The output is a new `.jsonl` file: never the input (nor the input's report path), never a folder."""
    if output.suffix.lower() != ".jsonl":
        raise AlignError(Problem(str(output), "the pairs are JSONL: give an output file ending in .jsonl"))
    if output.is_dir():
        raise AlignError(Problem(str(output), "is a folder; give an output file ending in .jsonl"))
    source = resolve_input(str(input_path), base_dir)
    if source is not None and source.resolve() in (output.resolve(), report_path(output).resolve()):
        raise AlignError(Problem(str(output), f"would overwrite the input {input_path}; write the pairs elsewhere"))


def _load(input_path, options: BuildOptions, base_dir, columns, split, issues) -> list[ScoredPrompt]:
    """The input's multi-answer rows; input that already holds pairs is an error that says so. With `issues`, bad
    input rows are counted there and left out."""
    rows = load_source(
        input_path,
        "auto",
        columns,
        base_dir,
        split,
        issues=issues,
        score_key=options.score_key,
        score_weights=options.score_weights,
    )
    if not isinstance(rows[0], ScoredPrompt):
        pairs = isinstance(rows[0], PreferenceRow)
        what = "preference pairs (prompt, chosen, rejected)" if pairs else "one answer per prompt (prompt, completion)"
        message = (
            f"already holds {what}; building pairs needs multi-answer rows: a prompt and `completions`, a list "
            "of two or more answers (scored or not)"
        )
        raise AlignError(Problem(str(input_path), message))
    return rows


def _atomic_write(path: Path, text: str) -> None:
    """The shared atomic writer, with a storage failure named as this output file (a user error, not a crash)."""
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise AlignError(Problem(str(path), f"cannot write: {exc.strerror or exc}")) from None


def write_pairs(
    input_path: str | Path,
    output_path: str | Path,
    options: BuildOptions | None = None,
    base_dir: Path | None = None,
    columns: Mapping[str, str] | None = None,
    split: str = "train",
    drop_bad_rows: bool = False,
) -> BuildReport:
    """Read multi-answer rows from `input_path` (any source `load_source` reads; relative to `base_dir`), build
    pairs, write them to `output_path` (JSONL) and the report to `report_path(output)`; return the report.

    Nothing is written when no pair survives: the error names the reasons instead. A bad input row stops the build
    naming file, line and field, unless `drop_bad_rows`: then it is left out and counted in `dropped_bad_rows`.
    """
    options = options or BuildOptions()
    output = Path(output_path)
    _check_paths(input_path, output, base_dir)
    issues = RowIssues() if drop_bad_rows else None
    rows, report = build_pairs(_load(input_path, options, base_dir, columns, split, issues), options)
    if not rows:
        reasons = ", ".join(f"{k} {v}" for k, v in report.dropped.items() if v) or "no candidate pairs"
        message = f"no pairs to write from {report.candidate_pairs} candidate pairs (dropped: {reasons})"
        raise AlignError(Problem(str(input_path), message))
    bad = issues.counts_by_code() if issues else {}
    report = replace(report, input=str(input_path), output=str(output), dropped_bad_rows=bad)
    _atomic_write(output, "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows))
    _atomic_write(report_path(output), json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return report

"""The data linter behind `align data inspect`: every problem in a source, counted by kind, plus statistics.

Where training stops at the first bad row, the linter reads on and reports all of them: per kind (see
`align.data.issues.PROBLEM_KINDS`) the count and the first rows, with line numbers for JSONL. With a tokenizer it
also finds rows longer than `max_length` and reports token-length distributions; without one, lengths are words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from align.data.formats.normalise import ScoredPrompt, detect_format
from align.data.formats.readers import Location, read_records, resolve_input
from align.data.formats.sources import load_source
from align.data.issues import RowIssues
from align.data.rows import CompletionRow, KtoRow, PreferenceRow
from align.data.stats import row_statistics
from align.data.token_lengths import sequence_lengths
from align.errors import AlignError
from align.progress import progress_bar

#: Exit codes of `align data inspect`.
CLEAN, PROBLEMS, UNREADABLE = 0, 1, 2


@dataclass
class SourceReport:
    """What the linter found in one source. `fatal` is set when the source could not be read at all (a missing
    file, an unknown file type, a JSON or CSV file that does not parse): then there are no rows to count."""

    path: str
    role: str = "train"
    stage: str | None = None
    format: str = "auto"
    rows_read: int = 0
    rows_ok: int = 0
    max_length: int | None = None
    issues: RowIssues = field(default_factory=RowIssues)
    stats: dict = field(default_factory=dict)
    fatal: str | None = None

    @property
    def exit_code(self) -> int:
        return UNREADABLE if self.fatal else PROBLEMS if self.issues else CLEAN

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "stage": self.stage,
            "role": self.role,
            "format": self.format,
            "rows_read": self.rows_read,
            "rows_ok": self.rows_ok,
            "max_length": self.max_length,
            "problems": self.issues.to_dict(),
            "stats": self.stats,
            "fatal": self.fatal,
            "exit_code": self.exit_code,
        }


def _answers(row) -> list[str]:
    if isinstance(row, (CompletionRow, KtoRow)):
        return [row.completion]
    if isinstance(row, ScoredPrompt):
        return [text for text, _ in row.completions]
    return [row.chosen] + ([row.rejected] if isinstance(row.rejected, str) else list(row.rejected))


def _answer_keys(row) -> list[str]:
    if isinstance(row, (CompletionRow, KtoRow)):
        return ["completion"]
    if isinstance(row, ScoredPrompt):
        return [f"completions[{i}]" for i in range(len(row.completions))]
    return ["chosen"] + (
        ["rejected"] if isinstance(row.rejected, str) else [f"rejected[{i}]" for i in range(len(row.rejected))]
    )


def _prompt(row):
    messages = row.meta.get("messages") if isinstance(row, (PreferenceRow, KtoRow)) else None
    return messages["prompt"] if messages else row.prompt


def token_lengths(rows: list, tokenizer, desc: str = "tokenising") -> list[tuple[int, list[int]]]:
    """`(prompt_tokens, [sequence tokens per answer])` for every row (see `sequence_lengths`), with a progress bar
    labelled `desc`."""
    with progress_bar(len(rows), desc) as bar:
        lengths = []
        for row in rows:
            lengths.append(sequence_lengths(tokenizer, _prompt(row), _answers(row)))
            bar.update()
    return lengths


def check_lengths(rows: list, lengths: list, max_length: int, issues: RowIssues) -> None:
    """Count a `too_long` problem for each row with a prompt + answer sequence longer than `max_length` tokens."""
    for row, (prompt_len, sequences) in zip(rows, lengths, strict=True):
        longest = max(range(len(sequences)), key=sequences.__getitem__)
        if sequences[longest] > max_length:
            message = (
                f"{sequences[longest]} tokens (prompt {prompt_len}) > max_length {max_length}: training "
                "truncates it; shorten the row or raise max_length"
            )
            # Only JSONL rows carry line numbers; a CSV/JSON/Parquet row's number is its row index (`file.csv row
            # 5`), which `Problem(source, ..., line)` would print as `file.csv:5`, a line it is not on.
            where = Location(row.source, row.line, Path(row.source).suffix.lower() == ".jsonl")
            issues.add(where.problem(message, _answer_keys(row)[longest], "too_long"))


def lint_source(
    path: str | Path,
    format: str = "auto",
    columns: dict | None = None,
    base_dir: Path | None = None,
    split: str = "train",
    *,
    tokenizer=None,
    max_length: int | None = None,
) -> SourceReport:
    """Read every row of a source, counting each bad row by kind instead of stopping, then measure the good ones.

    `format="completion"` lints SFT rows, `format="kto"` labelled (KTO) rows. `max_length` (needs `tokenizer`) adds
    the `too_long` check.
    """
    report = SourceReport(str(path), format=format, max_length=max_length)
    try:
        report.path = str(resolve_input(str(path), base_dir) or path)
        rows = load_source(path, format, columns, base_dir, split, issues=report.issues)
    except AlignError as exc:
        if not report.issues:
            report.fatal = "; ".join(str(p) for p in exc.problems)
            return report
        rows = []  # every row was bad: the counts say why
    report.rows_read = len(rows) + report.issues.total
    report.rows_ok = len(rows)
    if rows and format == "auto":
        report.format = _detected_format(path, columns, base_dir, split)
    lengths = token_lengths(rows, tokenizer, f"tokenising {report.path}") if tokenizer is not None and rows else None
    if lengths is not None and max_length:
        check_lengths(rows, lengths, max_length, report.issues)
    report.stats = row_statistics(rows, lengths)
    return report


def _detected_format(path, columns, base_dir, split) -> str:
    """The format auto-detection picked (from the first readable record, as `load_source` does)."""
    for record in read_records(str(path), base_dir, split):
        if record.problem is None:
            return detect_format(record, columns)
    return "auto"


def overall_exit_code(reports: list[SourceReport]) -> int:
    """2 if any source was unreadable, else 1 if any had problems, else 0."""
    return max((report.exit_code for report in reports), default=CLEAN)

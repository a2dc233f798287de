"""Bad rows, counted by kind: what the linter reports and what `bad_rows: drop` leaves out of training.

Every data problem carries a `code` (`Problem.code`); `RowIssues` counts problems by code and keeps the first few
of each, so a report can say "missing field: 12 rows (lines 4, 9, 17, ...)" and nothing is ever dropped silently.
"""

from __future__ import annotations

import logging
from collections import Counter

from align.errors import AlignError, Problem

logger = logging.getLogger(__name__)

#: Problem code → what it means, in report order.
PROBLEM_KINDS = {
    "unreadable": "unreadable row (not UTF-8, broken JSON, not an object, wrong number of CSV cells)",
    "missing_field": "missing field",
    "empty_field": "empty field",
    "wrong_type": "wrong type",
    "identical": "chosen identical to rejected",
    "duplicate": "duplicate row",
    "too_long": "longer than max_length tokens (would be truncated)",
    "invalid": "other invalid row",
}
#: How many example problems of each kind a report keeps.
FIRST_N = 5


class RowIssues:
    """Problems found in rows, by code: counts, and the first `FIRST_N` problems of each code."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.first: dict[str, list[Problem]] = {}

    def add(self, problem: Problem) -> None:
        code = problem.code if problem.code in PROBLEM_KINDS else "invalid"
        self.counts[code] += 1
        examples = self.first.setdefault(code, [])
        if len(examples) < FIRST_N:
            examples.append(problem)

    def add_error(self, error: AlignError) -> None:
        """Count a row's error by its first problem (one bad row counts once, whatever else is wrong with it)."""
        self.add(error.problems[0])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return self.total > 0

    def merge(self, other: RowIssues) -> None:
        for code, count in other.counts.items():
            self.counts[code] += count
            room = FIRST_N - len(self.first.setdefault(code, []))
            self.first[code].extend(other.first.get(code, [])[:room])

    def to_dict(self) -> dict:
        """`{code: {"count", "meaning", "first": ["file:12: chosen: is empty", ...]}}` in `PROBLEM_KINDS` order."""
        return {
            code: {
                "count": self.counts[code],
                "meaning": PROBLEM_KINDS[code],
                "first": [str(p) for p in self.first[code]],
            }
            for code in PROBLEM_KINDS
            if self.counts[code]
        }

    def counts_by_code(self) -> dict[str, int]:
        return {code: self.counts[code] for code in PROBLEM_KINDS if self.counts[code]}

    def log_dropped(self, what: str) -> None:
        """One warning per kind of dropped row, with the first example, so the training log shows every drop."""
        for entry in self.to_dict().values():
            logger.warning(
                "%s: dropped %d row(s): %s; first: %s", what, entry["count"], entry["meaning"], entry["first"][0]
            )


def answer_key(row) -> tuple:
    """What makes two rows the same example: prompt and answers, as the row type defines it (`row.key()`)."""
    return row.key()


def _where(row):
    """The row's location: a line number for JSONL files, a row number for every other container."""
    from align.data.formats.readers import Location

    return Location(row.source, row.line, str(row.source).lower().endswith(".jsonl"))


def duplicate_problem(row, first) -> Problem:
    message = f"duplicates {_where(first)} (same prompt and answers); remove it, or set bad_rows: drop"
    return _where(row).problem(message, None, "duplicate")


def drop_duplicates(rows: list, issues: RowIssues | None = None) -> list:
    """`rows` without repeats of an earlier row (same prompt and answers): each repeat is counted in `issues`, or,
    without `issues`, raises `AlignError` (a repeated pair silently doubles its weight in training)."""
    seen: dict[tuple, object] = {}
    kept = []
    for row in rows:
        key = answer_key(row)
        if key in seen:
            problem = duplicate_problem(row, seen[key])
            if issues is None:
                raise AlignError(problem)
            issues.add(problem)
            continue
        seen[key] = row
        kept.append(row)
    return kept

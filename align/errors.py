"""The one exception type for mistakes a user can fix (bad recipe, data, flags).

The CLI prints each problem on one line and exits with code 2; anything else is an internal failure (exit 1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Line breaks and other control characters, which a key, value or path from the user's file may hold (a YAML key
# "a\nb", a data path with a newline, a NUL byte): printed raw they would split one problem over several lines (or
# hide part of it), breaking the promise of one line per problem. Tabs are harmless and stay.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's input, located as precisely as we know.

    `where` is a file name (or `--set`, `--flag`), `line` a 1-based line number when known, `key` a dotted key path
    (`stages[0].training.learning_rate`) or a row field, `message` what is wrong and what to do. `code` classifies a
    data row's problem (`missing_field`, `wrong_type`...; see `align.data.issues.PROBLEM_KINDS`) so the linter can
    count problems by kind and training can drop bad rows by reason.
    """

    where: str
    message: str
    line: int | None = None
    key: str | None = None
    code: str | None = None

    def __str__(self) -> str:
        location = self.where if self.line is None else f"{self.where}:{self.line}"
        text = f"{location}: {self.key}: {self.message}" if self.key else f"{location}: {self.message}"
        return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)  # escaped, so one problem is one line


class AlignError(Exception):
    """A user error: one or more `Problem`s, each printed as one line."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(where="align", message=problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class GateMissed(Exception):
    """A stage missed one or more of its gates (`align.gates`); the CLI prints `lines`, one per missed gate, and
    exits 1: the recipe and data were fine, the trained result was not good enough."""

    def __init__(self, lines: list[str], checked: dict | None = None):
        self.lines = lines
        self.checked = checked or {}  # the stage's probe figures and gate results, for summary.json
        super().__init__("\n".join(lines))

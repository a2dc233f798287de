"""Prompt → completion rows for SFT stages: `prompt` and `completion` (or a preference file's `chosen`, so one file
can feed both an SFT warm-up and a preference stage), from any reader the preference data has."""

from __future__ import annotations

from pathlib import Path

from align.data.rows import CompletionRow


def load_completion_rows(
    path: str | Path, columns: dict | None = None, base_dir: Path | None = None, split: str = "train", issues=None
) -> list[CompletionRow]:
    """Every row of a source as prompt → completion (`chosen` stands in for a missing `completion` column).

    With `issues` (an `align.data.issues.RowIssues`), bad rows are counted there and left out instead of raising.
    """
    from align.data.formats import load_source

    return load_source(path, "completion", columns, base_dir, split, issues=issues)


__all__ = ["CompletionRow", "load_completion_rows"]

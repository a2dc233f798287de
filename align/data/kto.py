"""Unpaired feedback rows for KTO stages: a KTO file's rows as they are, or a preference file's pairs split into
one desirable row (the chosen answer) and one undesirable row per rejected answer."""

from __future__ import annotations

import logging
from pathlib import Path

from align.data.rows import KtoRow, PreferenceRow
from align.errors import AlignError, Problem

logger = logging.getLogger(__name__)


def unpair(pair: PreferenceRow) -> list[KtoRow]:
    """`(prompt, chosen, True)` then `(prompt, rejected, False)` for each rejected answer (K of them for a K-negative
    row), each keeping the pair's other columns (so `kinds`, `difficulties` and `min_margin` filter whole pairs)
    and its location; multi-turn pairs keep their messages."""
    rejected = [pair.rejected] if isinstance(pair.rejected, str) else list(pair.rejected)
    messages = pair.meta.get("messages")
    meta = {key: value for key, value in pair.meta.items() if key != "messages"}
    answers = pair.chosen, *rejected
    rows = []
    for index, answer in enumerate(answers):
        row_meta = dict(meta)
        if messages:
            turns = messages["chosen"] if index == 0 else _rejected_turns(messages["rejected"], index - 1)
            row_meta["messages"] = {"prompt": messages["prompt"], "completion": turns}
        rows.append(KtoRow(pair.prompt, answer, index == 0, pair.source, pair.line, row_meta, answers))
    return rows


def _rejected_turns(rejected: list, index: int) -> list[dict]:
    """Rejected answer `index` of a pair's messages: one message list, or the index-th of K."""
    return rejected[index] if rejected and isinstance(rejected[0], list) else rejected


def load_kto_rows(
    path: str | Path,
    format: str = "auto",
    columns: dict | None = None,
    base_dir: Path | None = None,
    split: str = "train",
    issues=None,
) -> list[KtoRow]:
    """Every row of a source as `KtoRow`s: a `kto` source's rows, or a pair source's pairs unpaired (`unpair`).

    Scored completions and unlabelled prompt → completion rows are errors naming what to do. With `issues` (an
    `align.data.issues.RowIssues`), bad rows are counted there and left out instead of raising.
    """
    from align.data.formats import ScoredPrompt, load_source

    rows = load_source(path, format, columns, base_dir, split, issues=issues)
    if isinstance(rows[0], KtoRow):
        return rows
    if isinstance(rows[0], PreferenceRow):
        split_rows = [row for pair in rows for row in unpair(pair)]
        desirable = sum(row.label for row in split_rows)
        logger.info(
            "%s: %d pairs split into %d desirable and %d undesirable rows",
            path,
            len(rows),
            desirable,
            len(split_rows) - desirable,
        )
        return split_rows
    if isinstance(rows[0], ScoredPrompt):
        raise AlignError(
            Problem(str(path), "holds scored completions, not labelled rows; build pairs with `align data build`")
        )
    message = (
        "holds prompt → completion rows without a label; add a `label` column (true = desirable, false = "
        "undesirable), or use the file in a `kind: sft` stage"
    )
    raise AlignError(Problem(str(path), message))


__all__ = ["KtoRow", "load_kto_rows", "unpair"]

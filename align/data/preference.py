"""Preference rows from any source (via `align.data.formats`), K-consistency checks, and held-out splits."""

from __future__ import annotations

import random
from pathlib import Path

from align.data.rows import KtoRow, PreferenceRow
from align.errors import AlignError, Problem


def load_preference_rows(
    path: str | Path,
    format: str = "auto",
    columns: dict | None = None,
    base_dir: Path | None = None,
    split: str = "train",
    issues=None,
) -> list[PreferenceRow]:
    """Every row of a preference source (any reader, any pair format), in order, normalised to `PreferenceRow`s.

    Scored multi-completion sources hold no pairs yet, and SFT and KTO rows none at all: all are errors here (the
    first pointing at `align data build`). With `issues`, bad rows are counted there and left out instead of raising.
    """
    from align.data.formats import ScoredPrompt, load_source

    rows = load_source(path, format, columns, base_dir, split, issues=issues)
    if isinstance(rows[0], ScoredPrompt):
        raise AlignError(Problem(str(path), "holds scored completions, not pairs; build pairs with `align data build`"))
    if isinstance(rows[0], KtoRow):
        raise AlignError(Problem(str(path), "holds labelled (KTO) rows, not pairs; use it in a `kind: kto` stage"))
    if not isinstance(rows[0], PreferenceRow):
        raise AlignError(Problem(str(path), "holds prompt → completion rows, not pairs; use it in a `kind: sft` stage"))
    return rows


def check_same_negatives(rows: list[PreferenceRow]) -> None:
    """Rows trained together must have the same number K of rejected answers (batches are K+1 rows per prompt)."""
    k = rows[0].num_rejected
    for row in rows:
        if row.num_rejected != k:
            raise AlignError(
                Problem(
                    row.source,
                    f"has {row.num_rejected} rejected answers but {rows[0].source}:{rows[0].line} has "
                    f"{k}; all rows of a stage need the same number",
                    row.line,
                    "rejected",
                )
            )


def split_rows(
    rows: list, eval_fraction: float, seed: int, max_rows: int | None = None, shuffle: bool = True
) -> tuple[list, list]:
    """`(train, held_out)`, training rows shuffled (seeded) unless `shuffle=False`; `max_rows` caps the training
    part (the first rows after shuffling, or in file order). Rows need a `.prompt`.

    Rows are grouped by prompt before splitting, so no prompt appears on both sides.
    """
    prompts = sorted({row.prompt for row in rows})
    random.Random(seed).shuffle(prompts)
    n_eval = round(len(prompts) * eval_fraction)
    held_prompts = set(prompts[:n_eval])
    rng = random.Random(seed + 1)
    train = [row for row in rows if row.prompt not in held_prompts]
    held = [row for row in rows if row.prompt in held_prompts]
    if shuffle:
        rng.shuffle(train)
    if max_rows is not None:
        train = train[:max_rows]
    return train, held

"""Which rows a stage trains and evaluates on, in what order: read, filter, check, split, order.

Every row a user gave is accounted for: the counts of rows filtered, held out or left unused go to summary.json.
"""

from __future__ import annotations

import random
from typing import Any, NamedTuple

from align.data import split_rows
from align.data.formats import mix_sources
from align.data.issues import RowIssues, drop_duplicates
from align.errors import AlignError, Problem
from align.recipe import LoadedRecipe, StageConfig
from align.recipe.schema import SourceConfig
from align.stages import stage_kind

DIFFICULTY_RANK = {"easy": 0, "medium": 1, "hard": 2}


class StageRows(NamedTuple):
    """A stage's rows: training rows in training order, held-out rows, and counts of every row filtered, held out
    or left unused (`summary.json`'s `rows`)."""

    train: list
    held_out: list
    counts: dict[str, Any]


def _margin(row) -> float:
    value = row.meta.get("margin")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AlignError(
            Problem(
                row.source, f"needs a numeric margin (got {value!r}) for min_margin/easy_to_hard", row.line, "margin"
            )
        )
    return float(value)


def _keep(rows: list, data) -> tuple[list, dict[str, int]]:
    """Apply the `kinds`, `difficulties` and `min_margin` filters; count what each removed."""
    removed = {"filtered_by_kind": 0, "filtered_by_difficulty": 0, "filtered_by_margin": 0}
    tests = [
        ("filtered_by_kind", bool(data.kinds), lambda row: row.meta.get("kind") in data.kinds),
        ("filtered_by_difficulty", bool(data.difficulties), lambda r: r.meta.get("difficulty") in data.difficulties),
        ("filtered_by_margin", data.min_margin is not None, lambda row: _margin(row) >= data.min_margin),
    ]
    for key, active, test in tests:
        if active:
            kept = [row for row in rows if test(row)]
            removed[key] += len(rows) - len(kept)
            rows = kept
    return rows, removed


def easy_to_hard(rows: list) -> list:
    """Rows sorted easy → medium → hard; within a difficulty, larger margins (clearer pairs) first; stable."""

    def key(row):
        difficulty = row.meta.get("difficulty")
        if difficulty not in DIFFICULTY_RANK:
            raise AlignError(
                Problem(
                    row.source,
                    f"order easy_to_hard needs a difficulty of easy, medium or hard, got {difficulty!r}",
                    row.line,
                    "difficulty",
                )
            )
        margin = row.meta.get("margin")
        return DIFFICULTY_RANK[difficulty], -(margin if isinstance(margin, (int, float)) else 0.0)

    return sorted(rows, key=key)


def _read_source(
    loaded: LoadedRecipe, stage: StageConfig, source, issues: RowIssues | None, counts: dict[str, int]
) -> list:
    """One source's rows, read as the stage's kind reads them, then cut to the source's own `kinds` and `max_rows`
    (what they leave out is added to `counts`); with `issues` (bad_rows: drop) bad rows are counted there and left
    out."""
    rows = stage_kind(stage.kind).read_rows(source, loaded.base_dir, issues)
    if source.kinds:
        kept = [row for row in rows if row.meta.get("kind") in source.kinds]
        counts["filtered_by_source_kind"] = counts.get("filtered_by_source_kind", 0) + len(rows) - len(kept)
        rows = kept
    if source.max_rows is not None and len(rows) > source.max_rows:
        # Seeded by the recipe's seed and the source's path, so two capped sources draw independently.
        picked = sorted(random.Random(f"{loaded.recipe.seed}:{source.path}").sample(range(len(rows)), source.max_rows))
        counts["unused_by_source_max_rows"] = counts.get("unused_by_source_max_rows", 0) + len(rows) - len(picked)
        rows = [rows[k] for k in picked]
    return rows


def _read_train(
    loaded: LoadedRecipe, stage: StageConfig, issues, generated, counts: dict[str, int]
) -> tuple[list, dict | None]:
    """The stage's training rows from all its sources and its `generated` (on-policy) source, if any (a row
    repeated across sources counts as a duplicate), mixed by weight when `mix_total` is set (with a report)."""
    sources = [*stage.data.train, *([generated] if generated is not None else [])]
    parts = [(_read_source(loaded, stage, source, issues, counts), source.weight) for source in sources]
    if len(parts) > 1:
        seen_before: list = []
        for index, (rows, weight) in enumerate(parts):
            kept = drop_duplicates(seen_before + rows, issues)[len(seen_before) :]
            seen_before += kept
            parts[index] = (kept, weight)
    if stage.data.mix_total is None:
        return [row for rows, _ in parts for row in rows], None
    return mix_sources(parts, seed=loaded.recipe.seed, total=stage.data.mix_total)


def stage_rows(loaded: LoadedRecipe, stage: StageConfig, seed: int, generated: SourceConfig | None = None) -> StageRows:
    """Training rows (in training order), held-out rows, and counts of what was filtered or left unused.

    `generated`: the stage's on-policy rows (`align.on_policy.generated`), read after its `train` sources. Held-out
    rows are the explicit `eval` sources, else a held-out fraction of the training rows (split by prompt).
    """
    data = stage.data
    issues = RowIssues() if data.bad_rows == "drop" else None
    source_counts: dict[str, int] = {}
    read, mixture = _read_train(loaded, stage, issues, generated, source_counts)
    explicit_eval = [row for source in data.eval for row in _read_source(loaded, stage, source, issues, source_counts)]
    rows, counts = _keep(read, data)
    explicit_eval, eval_removed = _keep(explicit_eval, data)
    if not rows:
        raise AlignError(f"stage {stage.name!r}: the filters (kinds, difficulties, min_margin) leave no training rows")
    stage_kind(stage.kind).check_rows(stage, rows + explicit_eval)
    fraction = 0.0 if explicit_eval else data.eval_fraction
    train, held = split_rows(rows, fraction, seed, data.max_rows, shuffle=data.order == "shuffled")
    if not train:
        raise AlignError(f"stage {stage.name!r}: no training rows left after the held-out split; lower eval_fraction")
    if data.order == "easy_to_hard":
        train = easy_to_hard(train)
    counts = {key: counts[key] + eval_removed[key] for key in counts} | source_counts
    counts.update(train_rows_read=len(read), held_out_of_train=0 if explicit_eval else len(held))
    if mixture is not None:
        counts["mixture"] = mixture
    counts["unused_by_max_rows"] = len(rows) - len(train) - (0 if explicit_eval else len(held))
    held = explicit_eval or held
    if issues is not None:
        counts["dropped_bad_rows"] = issues.counts_by_code()
        issues.log_dropped(f"stage {stage.name!r}")
    if data.max_eval_rows is not None:
        counts["unused_by_max_eval_rows"] = max(0, len(held) - data.max_eval_rows)
        held = held[: data.max_eval_rows]
    return StageRows(train, held, counts)

"""`align data inspect PATH_OR_RECIPE`: lint one data source, or every source of every stage of a recipe (with the
recipe's tokenizer and each stage's `max_length`), and render the reports as text or JSON."""

from __future__ import annotations

from pathlib import Path

from align.data.issues import PROBLEM_KINDS
from align.data.lint import SourceReport, lint_source, overall_exit_code

RECIPE_SUFFIXES = (".yaml", ".yml")


def _stage_max_length(loaded, stage) -> int | None:
    from align.recipe.trl_configs import planning_config

    return planning_config(stage.kind, loaded.stage_training(stage)).max_length


def inspect_recipe(recipe_path: str, overrides: list[str], model: str | None = None) -> list[SourceReport]:
    """A report per distinct source of the recipe (train and eval of every stage), checked against the stage's
    `max_length` with the recipe's tokenizer (or `model`'s)."""
    from align.models import load_tokenizer
    from align.recipe import load_recipe
    from align.stages import stage_kind

    loaded = load_recipe(recipe_path, overrides)
    recipe = loaded.recipe
    tokenizer = load_tokenizer(model or recipe.model.name, recipe.model.trust_remote_code)
    reports: dict[tuple, SourceReport] = {}
    for stage in recipe.stages:
        max_length = _stage_max_length(loaded, stage)
        fmt = stage_kind(stage.kind).row_format
        for role, sources in (("train", stage.data.train), ("eval", stage.data.eval)):
            for source in sources:
                key = (
                    source.path,
                    fmt or source.format,
                    tuple(sorted(source.columns.items())),
                    source.split,
                    max_length,
                    role,
                )
                if key in reports:
                    reports[key].stage += f", {stage.name}"
                    continue
                report = lint_source(
                    source.path,
                    fmt or source.format,
                    source.columns,
                    loaded.base_dir,
                    source.split,
                    tokenizer=tokenizer,
                    max_length=max_length,
                )
                report.stage, report.role = stage.name, role
                reports[key] = report
    return list(reports.values())


def inspect_path(
    path: str, fmt: str = "auto", model: str | None = None, max_length: int | None = None, split: str = "train"
) -> list[SourceReport]:
    """The report for one file, folder or Hub id; lengths in `model`'s tokens when given, else in words."""
    tokenizer = None
    if model or max_length:
        from align.models import DEFAULT_MODEL, load_tokenizer

        tokenizer = load_tokenizer(model or DEFAULT_MODEL)
    return [lint_source(path, fmt, split=split, tokenizer=tokenizer, max_length=max_length)]


def inspect_target(
    target: str,
    overrides: list[str] = (),
    fmt: str = "auto",
    model: str | None = None,
    max_length: int | None = None,
    split: str = "train",
) -> list[SourceReport]:
    """A recipe (`.yaml`/`.yml`) or a data source."""
    if Path(target).suffix.lower() in RECIPE_SUFFIXES:
        return inspect_recipe(target, list(overrides), model)
    return inspect_path(target, fmt, model, max_length, split)


def _table(header: tuple, rows: list[list[str]], indent: str = "    ") -> list[str]:
    widths = [max(len(row[i]) for row in [list(header), *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = zip(row, widths, strict=True)
        return indent + "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(cells))

    return [line(row) for row in [list(header), *rows]]


def _render_problems(report: SourceReport) -> list[str]:
    problems = report.issues.to_dict()
    if not problems:
        return ["  problems: none"]
    lines = [f"  problems: {report.issues.total} row(s)"]
    for code, entry in problems.items():
        lines.append(f"    {entry['count']:>6}  {code}: {PROBLEM_KINDS[code]}")
        lines.extend(f"            {example}" for example in entry["first"])
        if entry["count"] > len(entry["first"]):
            lines.append(f"            ... and {entry['count'] - len(entry['first'])} more")
    return lines


def _render_stats(stats: dict) -> list[str]:
    if not stats:
        return []
    header = (f"lengths ({stats['length_unit']})", "min", "p50", "p90", "max", "mean")
    rows = [[role] + [str(dist[k]) for k in header[1:]] for role, dist in stats["lengths"].items() if dist]
    lines = ["  " + _table(header, rows, "")[0], *_table(header, rows, "  ")[1:]]
    if "chosen_shorter_share" in stats:
        lines.append(f"  chosen shorter than rejected: {stats['chosen_shorter_share']:.1%} of pairs")
    for label in ("label", "kind", "difficulty", "domain"):
        counts = stats.get(f"{label}_counts")
        if counts:
            lines.append(f"  {label}: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    scorer = dict(stats.get("scorer", {}))
    agree = scorer.pop("scorer_prefers_chosen", None)
    names = ("words", "filler_rate", "restatement", "actionability", "key_point_recall", "concise_score")
    header = ("scorer (mean)", "words", "filler/100w", "restates", "actionable", "key points", "score")
    rows = [[role] + [f"{m[n]:g}" if n in m else "-" for n in names] for role, m in scorer.items()]
    if rows:
        lines += ["  " + _table(header, rows, "")[0], *_table(header, rows, "  ")[1:]]
    if agree is not None:
        lines.append(f"  scorer prefers chosen: {agree:.1%} of pairs")
    return lines


def render_text(reports: list[SourceReport]) -> str:
    """The human report: per source its problems and statistics, then one verdict line."""
    lines = []
    for report in reports:
        where = f" (stage {report.stage}, {report.role})" if report.stage else ""
        if report.fatal:
            lines += [f"{report.path}{where}: unreadable: {report.fatal}", ""]
            continue
        limit = f", max_length {report.max_length}" if report.max_length else ""
        lines.append(
            f"{report.path}{where}: format {report.format}, {report.rows_read} rows read, "
            f"{report.rows_ok} usable{limit}"
        )
        lines += _render_problems(report) + _render_stats(report.stats) + [""]
    code = overall_exit_code(reports)
    bad = sum(1 for r in reports if r.exit_code)
    verdict = {
        0: f"clean: {len(reports)} source(s), no problems",
        1: f"problems found in {bad} of {len(reports)} source(s)",
        2: f"unreadable input in {bad} of {len(reports)} source(s)",
    }[code]
    return "\n".join(lines + [verdict])

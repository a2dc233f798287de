"""`align report RUN_A RUN_B`: two runs side by side, from their `metrics.jsonl` and `summary.json` alone.

Writes into the comparison folder (default `RUN_A/report/compare-<RUN_B folder name>/`): one PNG per loss or reward
metric with both runs' curves over the run-wide optimizer step (each run's stage boundaries dashed in its colour), and
`compare.md`: the setup of each run (recipe, status, versions, device, data digests) with differences marked, the
stage figures side by side with B − A, and each plot linked with its caption or the reason it was not drawn. Runs are
labelled by their recipe names, or by their folders when both ran the same recipe.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from align.errors import AlignError, Problem
from align.outputs import atomic_write_bytes
from align.report import Plot, gates_cell, loop_cell, new_figure, number_cell, save_png
from align.run_files import Run, boundary_steps, load_run, series

COMPARE_FILE = "compare.md"
RUN_COLORS = ("C0", "C3")
# The curves compared: metrics.jsonl key → title. `eval_` keys are held-out figures, measured at evaluations.
METRICS = {
    "loss": "Training loss",
    "eval_loss": "Held-out loss",
    "rewards/margins": "Reward margin (chosen − rejected)",
    "rewards/accuracies": "Reward accuracy",
    "eval_rewards/margins": "Held-out reward margin",
    "eval_rewards/accuracies": "Held-out reward accuracy",
}


def run_labels(a: Run, b: Run) -> tuple[str, str]:
    """The two runs' names in plots and tables: their recipe names when those differ, else the shortest distinct
    endings of their folder paths (`out-a`, `lr1e-4/out`)."""
    names = (str(a.summary.get("recipe") or ""), str(b.summary.get("recipe") or ""))
    if all(names) and names[0] != names[1]:
        return names
    parts_a, parts_b = a.root.resolve().parts, b.root.resolve().parts
    for depth in range(1, max(len(parts_a), len(parts_b)) + 1):
        tails = ("/".join(parts_a[-depth:]), "/".join(parts_b[-depth:]))
        if tails[0] != tails[1]:
            return tails
    raise AlignError(Problem(str(a.root), "is the same run twice; give two different run folders"))


def _stage_boundaries(ax, run: Run, color: str) -> None:
    for x in boundary_steps(run.spans):
        ax.axvline(x, color=color, linestyle="--", linewidth=0.8, alpha=0.6)


def _plot_metric(runs: list[Run], labels: tuple[str, str], key: str, title: str, out: Path) -> Plot:
    """Both runs' `key` over the run-wide step: one line per stage (none across a boundary), held-out figures as
    markers joined by a dotted line. Skipped, with the reason, when neither run logged `key`."""
    file = re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_") + ".png"
    logged = [label for run, label in zip(runs, labels, strict=True) if series(run.rows, key)[0]]
    if not logged:
        return Plot(file, title, "", f"neither run logged `{key}` in metrics.jsonl")
    fig, (ax,) = new_figure(1, f"{title} — {labels[0]} vs {labels[1]}")
    for run, label, color in zip(runs, labels, RUN_COLORS, strict=True):
        if key.startswith("eval_"):
            steps, values = series(run.rows, key)
            ax.plot(steps, values, "D:", color=color, markersize=5, label=label if steps else None)
        else:
            for number, span in enumerate(run.spans):
                steps, values = series(run.rows, key, span.name)
                ax.plot(steps, values, "-o", color=color, markersize=2.5, label=label if number == 0 else None)
        _stage_boundaries(ax, run, color)
    ax.set_xlabel("optimizer step (whole run)")
    ax.set_ylabel(key)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)
    save_png(fig, out / file)
    only = "" if len(logged) == 2 else f" Only {logged[0]} logged it."
    return Plot(file, title, f"`{key}` per logged step of each run; dashed lines: each run's stage boundaries.{only}")


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value).replace("|", "\\|")
    return number_cell(value)


def _data_digest(summary: dict) -> str | None:
    """The run's data files as one comparable text (digests in listed order), or None when not recorded."""
    files = summary.get("data_files")
    if not isinstance(files, list):
        return None
    return ", ".join(f"{Path(str(f.get('path'))).name}:{str(f.get('sha256'))[:12]}" for f in files)


def _setup(summary: dict) -> dict[str, Any]:
    """What a run ran with, flat: summary facts, then its `environment` block (absent from older runs)."""
    env = summary.get("environment") or {}
    git = env.get("git") or {}
    commit = git.get("commit")
    facts = {
        "recipe": summary.get("recipe"),
        "model": summary.get("model"),
        "status": summary.get("status"),
        "total steps": summary.get("total_steps"),
        "world size": summary.get("world_size"),
        "device": env.get("device"),
        "dtype": env.get("dtype"),
        "align": env.get("align"),
        "git commit": f"{commit[:12]}{' (dirty)' if git.get('dirty') else ''}" if commit else None,
        "python": env.get("python"),
    }
    facts.update({name: version for name, version in sorted((env.get("libraries") or {}).items())})
    facts["data files (sha256)"] = _data_digest(summary)
    return facts


def setup_table(a: Run, b: Run, labels: tuple[str, str]) -> list[str]:
    """compare.md's setup table: one row per fact either run recorded, `≠` where they differ."""
    setups = _setup(a.summary), _setup(b.summary)
    lines = [f"| | {labels[0]} | {labels[1]} | |", "|---|---|---|---|"]
    for key in setups[0]:
        values = setups[0].get(key), setups[1].get(key)
        if values == (None, None):
            continue
        lines.append(f"| {key} | {_cell(values[0])} | {_cell(values[1])} | {'≠' if values[0] != values[1] else ''} |")
    return lines


# A stage's figures compared: label → how to read it from a summary.json stage.
STAGE_FIGURES = {
    "kind": lambda s: s.get("kind"),
    "steps": lambda s: s.get("steps"),
    "final train loss": lambda s: s.get("final_train_loss"),
    "mean train loss": lambda s: s.get("mean_train_loss"),
    "held-out loss": lambda s: (s.get("eval") or {}).get("loss"),
    "held-out reward accuracy": lambda s: (s.get("eval") or {}).get("rewards/accuracies"),
    "held-out reward margin": lambda s: (s.get("eval") or {}).get("rewards/margins"),
    "probe tokens ÷ base": lambda s: (s.get("probe") or {}).get("probe/mean_tokens_ratio"),
    "key-point recall drop": lambda s: (s.get("probe") or {}).get("probe/key_point_recall_drop"),
    "loop rate base → stage": lambda s: loop_cell(s.get("probe") or {}),
    "gates": gates_cell,
    "train runtime (s)": lambda s: s.get("train_runtime_s"),
}


def _difference(first: Any, second: Any) -> str:
    numbers = [v for v in (first, second) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return number_cell(second - first) if len(numbers) == 2 else ""


def stage_figures_table(a: Run, b: Run, labels: tuple[str, str]) -> list[str]:
    """compare.md's stage table: for each stage name (A's order, then B's own), each figure of both runs and B − A;
    "—" where a run has no such stage or figure."""
    stages = [{str(s.get("name")): s for s in run.summary.get("stages", [])} for run in (a, b)]
    names = list(stages[0]) + [name for name in stages[1] if name not in stages[0]]
    lines = [f"| stage | figure | {labels[0]} | {labels[1]} | B − A |", "|---|---|---|---|---|"]
    for name in names:
        for figure, read in STAGE_FIGURES.items():
            values = [read(stage[name]) if name in stage else None for stage in stages]
            values = [None if value == "—" else value for value in values]  # "—": the cell readers' "not measured"
            if values == [None, None]:
                continue
            cells = [_cell(value) for value in values]
            lines.append(f"| {name} | {figure} | {cells[0]} | {cells[1]} | {_difference(*values)} |")
    return lines


def render_comparison(a: Run, b: Run, labels: tuple[str, str], plots: list[Plot]) -> str:
    """compare.md: which runs, the setup table, the stage table, then each plot linked with its caption (or why it
    was not drawn)."""
    lines = [
        f"# Runs compared: {labels[0]} vs {labels[1]}",
        "",
        f"A = `{labels[0]}` ({a.root}), B = `{labels[1]}` ({b.root}). Drawn from each run's `metrics.jsonl` and "
        "`summary.json`.",
        "",
        "## Setup",
        "",
        *setup_table(a, b, labels),
        "",
        "## Stages",
        "",
        *stage_figures_table(a, b, labels),
        "",
        "## Plots",
    ]
    for plot in plots:
        lines += ["", f"### {plot.title}", ""]
        if plot.reason is None:
            lines += [f"![{plot.title}]({plot.file})", "", plot.caption]
        else:
            lines.append(f"Not drawn (`{plot.file}`): {plot.reason}.")
    return "\n".join(lines) + "\n"


def default_compare_dir(run_a: str | Path, run_b: str | Path) -> Path:
    """Where a comparison goes without `--output-dir`: `RUN_A/report/compare-<RUN_B folder name>/`."""
    return Path(run_a) / "report" / f"compare-{Path(run_b).resolve().name}"


def write_comparison(run_a: str | Path, run_b: str | Path, output_dir: str | Path | None = None) -> list[Path]:
    """Compare two `align train` output folders: write the overlay plots and `compare.md` into `output_dir`
    (default `RUN_A/report/compare-<RUN_B folder name>/`); return the written files (PNGs, then compare.md).
    A missing or broken input raises `AlignError` naming the file."""
    a, b = load_run(run_a), load_run(run_b)
    labels = run_labels(a, b)
    out = Path(output_dir) if output_dir is not None else default_compare_dir(run_a, run_b)
    out.mkdir(parents=True, exist_ok=True)
    plots = [_plot_metric([a, b], labels, key, title, out) for key, title in METRICS.items()]
    for plot in plots:
        if plot.reason is not None:
            (out / plot.file).unlink(missing_ok=True)  # a stale plot from an earlier comparison would contradict it
    atomic_write_bytes(out / COMPARE_FILE, render_comparison(a, b, labels, plots).encode("utf-8"))
    return [out / plot.file for plot in plots if plot.reason is None] + [out / COMPARE_FILE]

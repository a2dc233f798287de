"""`align report OUTPUT`: PNG plots and a short `report.md` from a run's `metrics.jsonl` and `summary.json` alone.

Writes into `OUTPUT/report/`: `loss.png`, `rewards.png`, `lengths.png` (time series over the run-wide optimizer step,
stage boundaries marked), `response_lengths.png` (before/after histogram of probe answer lengths) and `probes.png`
(per-stage probe figures). A plot whose figures the run never logged is skipped and `report.md` says why. No
tracker (wandb) is needed; matplotlib draws off-screen (Agg), and the same inputs give byte-identical files.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from align.errors import AlignError, Problem
from align.outputs import atomic_write_bytes
from align.run_files import Run, StageSpan, boundary_steps, load_run, read_json_file, read_jsonl_records, series

REPORT_DIR = "report"
# Fixed PNG metadata (no matplotlib version), so a report is byte-identical across runs and installs.
PNG_METADATA = {"Software": None}
BEFORE, AFTER = "#8c8c8c", "#1f77b4"


@dataclass(frozen=True)
class Plot:
    """One figure of the report: drawn (`reason` is None) or skipped (`reason` says why, for report.md)."""

    file: str
    title: str
    caption: str
    reason: str | None = None


def new_figure(panels: int, title: str):
    """An off-screen matplotlib figure, 8 inches wide, with `panels` axes stacked vertically; (figure, [axes])."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 2.8 * panels + 0.6), dpi=100, layout="constrained")
    axes = fig.subplots(panels, 1, squeeze=False)[:, 0]
    fig.suptitle(title)
    return fig, list(axes)


def save_png(fig, path: Path) -> None:
    """`fig` as a PNG at `path`, atomically, without version metadata (same inputs → same bytes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata=PNG_METADATA)
    atomic_write_bytes(path, buffer.getvalue())


def _mark_stages(ax, spans: list[StageSpan]) -> None:
    """Dashed lines at the stage boundaries, each stage's name above its region, and the whole run on the x axis."""
    from matplotlib.ticker import MaxNLocator

    for x in boundary_steps(spans):
        ax.axvline(x, color="0.4", linestyle="--", linewidth=0.8)
    for span in spans:
        ax.text(
            (span.start + span.end) / 2,
            1.01,
            span.name,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=8,
            color="0.3",
        )
    if spans:
        ax.set_xlim(spans[0].start, max(span.end for span in spans))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("optimizer step (whole run)")


# A time-series figure: file, title, caption, and its panels as (y label, [(metrics key, legend label)]). Keys with
# the `eval_` prefix are held-out figures, drawn as markers at the step they were measured; others as lines.
TIME_SERIES = [
    (
        "loss.png",
        "Loss",
        "Training loss per logged step (line) and held-out loss (markers) at each evaluation; "
        "an SFT stage's loss is token cross-entropy, a preference stage's its combined contrastive loss, so the scale "
        "can jump at a boundary.",
        [("loss", [("loss", "train"), ("eval_loss", "held-out")])],
    ),
    (
        "rewards.png",
        "Preference rewards",
        "Implicit reward margin (chosen − rejected, in nats × β) and reward "
        "accuracy (share of pairs with a positive margin) per step, with held-out values as markers.",
        [
            ("reward margin", [("rewards/margins", "train"), ("eval_rewards/margins", "held-out")]),
            ("reward accuracy", [("rewards/accuracies", "train"), ("eval_rewards/accuracies", "held-out")]),
        ],
    ),
    (
        "lengths.png",
        "Pair lengths",
        "Mean completion length in tokens of the chosen and rejected answers in each "
        "training batch, and the share of pairs whose chosen answer is the shorter one.",
        [
            (
                "tokens",
                [
                    ("lengths/chosen", "chosen"),
                    ("lengths/rejected", "rejected"),
                    ("eval_lengths/chosen", "chosen (held-out)"),
                    ("eval_lengths/rejected", "rejected (held-out)"),
                ],
            ),
            (
                "chosen shorter (fraction)",
                [("lengths/chosen_shorter_frac", "train"), ("eval_lengths/chosen_shorter_frac", "held-out")],
            ),
        ],
    ),
]


def _plot_time_series(run: Run, out: Path, file: str, title: str, caption: str, panels: list) -> Plot:
    """One figure with a panel per (label, keys), every panel marked with the stage boundaries."""
    keys = [key for _, pairs in panels for key, _ in pairs]
    if not any(series(run.rows, key)[0] for key in keys):
        return Plot(
            file,
            title,
            caption,
            f"metrics.jsonl has none of {', '.join(f'`{k}`' for k in keys)}"
            + (" (only preference stages log them)" if file != "loss.png" else ""),
        )
    fig, axes = new_figure(len(panels), f"{title} — {run.summary.get('recipe', run.root.name)}")
    for ax, (ylabel, pairs) in zip(axes, panels, strict=True):
        for index, (key, label) in enumerate(pairs):
            color = f"C{index}"
            if key.startswith("eval_"):
                steps, values = series(run.rows, key)
                if steps:
                    ax.plot(steps, values, "D", color=color, markersize=6, label=label)
                continue
            for number, span in enumerate(run.spans):  # one line per stage: no segment across a boundary
                steps, values = series(run.rows, key, span.name)
                ax.plot(steps, values, "-o", color=color, markersize=3, label=label if number == 0 else None)
        ax.set_ylabel(ylabel)
        _mark_stages(ax, run.spans)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8)
    save_png(fig, out / file)
    return Plot(file, title, caption)


def _tokens(records: list, key: str, path: Path) -> list[int]:
    """The integer `key` of every record that has one (token counts); `AlignError` naming `path` if one is not."""
    try:
        return [int(r[key]) for r in records if isinstance(r, dict) and r.get(key) is not None]
    except (TypeError, ValueError):
        raise AlignError(Problem(str(path), "needs integer token counts", key=key)) from None


def response_lengths(run: Run) -> tuple[str, str, list[int], list[int]] | None:
    """(source description, "after" label, base model's answer tokens, tuned answer tokens) from the last stage with
    `OUTPUT/<stage>/probes.jsonl`, else from `OUTPUT/eval.json` (`align eval --output`); None if neither exists."""
    for span in reversed(run.spans):
        path = run.root / span.name / "probes.jsonl"
        records = read_jsonl_records(path) if path.is_file() else []
        tuned = _tokens(records, "tuned_tokens", path)
        if tuned:
            source = f"probe answers (`{span.name}/probes.jsonl`)"
            return source, f"after stage {span.name}", _tokens(records, "base_tokens", path), tuned
    path = run.root / "eval.json"
    report = read_json_file(path) if path.is_file() else {}
    examples = (report.get("examples") or []) if isinstance(report, dict) else []
    tuned = _tokens(examples, "tokens", path)
    if tuned:
        return "answers in `eval.json` (`align eval`)", "after: adapter", _tokens(examples, "base_tokens", path), tuned
    return None


def _plot_response_lengths(run: Run, out: Path) -> Plot:
    """Overlaid histograms of answer lengths (tokens, shared integer bins): base model (before) and tuned (after)."""
    from matplotlib.ticker import MaxNLocator

    file, title = "response_lengths.png", "Response lengths before/after"
    found = response_lengths(run)
    if found is None:
        return Plot(
            file,
            title,
            "",
            "no generations were recorded: no stage had probe prompts (`eval.prompts`) and "
            "there is no `eval.json` from `align eval --output` in the output folder",
        )
    source, after, base, tuned = found
    low, high = min(base + tuned), max(base + tuned)
    width = max(1, math.ceil((high - low + 1) / 30))
    bins = [low - 0.5 + width * i for i in range((high - low) // width + 2)]
    fig, (ax,) = new_figure(1, f"{title} — {run.summary.get('recipe', run.root.name)}")
    for values, color, label in ((base, BEFORE, "before: base model"), (tuned, AFTER, after)):
        if values:
            mean = sum(values) / len(values)
            ax.hist(values, bins=bins, color=color, alpha=0.55, label=f"{label} (mean {mean:.1f})")
            ax.axvline(mean, color=color, linewidth=1.2)
    ax.set_xlim(bins[0] - width, bins[-1] + width)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("response length (tokens)")
    ax.set_ylabel("answers")
    ax.legend(loc="best", fontsize=8)
    save_png(fig, out / file)
    means = "; ".join(
        f"{name} mean {sum(v) / len(v):.1f} tokens over {len(v)} answers"
        for name, v in (("before (base model)", base), (after, tuned))
        if v
    )
    missing = "" if base else " No base-model answers were recorded (run `align eval` with `--baseline`)."
    return Plot(file, title, f"Histogram of answer lengths in tokens from the {source}: {means}.{missing}")


def probe_figures(run: Run) -> dict[str, dict[str, float]]:
    """Per stage (run order), its `probe/*` figures: summary.json's `probe`, else the stage's last probe row."""
    by_stage = {str(s.get("name")): dict(s.get("probe") or {}) for s in run.summary.get("stages", [])}
    from_rows: dict[str, dict[str, float]] = {}
    for row in run.rows:
        if any(k.startswith("probe/") for k in row):
            from_rows[str(row.get("stage"))] = {k: v for k, v in row.items() if k.startswith("probe/")}
    return {
        span.name: by_stage.get(span.name) or from_rows[span.name]
        for span in run.spans
        if by_stage.get(span.name) or span.name in from_rows
    }


def _plot_probes(run: Run, out: Path) -> Plot:
    """Grouped bars per stage: probe mean answer tokens and key-point recall, base model vs the stage's adapter."""
    file, title = "probes.png", "Probe answers per stage"
    caption = (
        "After each stage with probe prompts: mean answer length in tokens and key-point recall (share of "
        "the prompts' key points an answer covers, 0–1), base model (grey) vs the stage's adapter (blue)."
    )
    figures = probe_figures(run)
    if not figures:
        return Plot(file, title, caption, "no stage had probe prompts (`eval.prompts` in the recipe)")
    panels = [("mean response tokens", "mean_response_tokens")]
    if any("probe/key_point_recall" in f for f in figures.values()):
        panels.append(("key-point recall", "key_point_recall"))
    fig, axes = new_figure(len(panels), f"{title} — {run.summary.get('recipe', run.root.name)}")
    names = list(figures)
    for ax, (ylabel, key) in zip(axes, panels, strict=True):
        for offset, prefix, color, label in ((-0.2, "probe/base_", BEFORE, "base"), (0.2, "probe/", AFTER, "tuned")):
            values = [figures[n].get(prefix + key, float("nan")) for n in names]
            ax.bar([i + offset for i in range(len(names))], values, width=0.4, color=color, label=label)
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel(ylabel)
        if key == "key_point_recall":
            ax.set_ylim(0, 1.05)
        ax.legend(loc="best", fontsize=8)
    save_png(fig, out / file)
    return Plot(file, title, caption)


def number_cell(value: Any) -> str:
    """A table cell: a finite number to 4 significant digits, anything else "—"."""
    return f"{value:.4g}" if isinstance(value, (int, float)) and math.isfinite(value) else "—"


def gates_cell(stage: dict[str, Any]) -> str:
    """A stage's gates as "2/3 passed; missed max_loop_rate", or "—" without gates."""
    gates = stage.get("gates") or []
    missed = [str(g.get("gate")) for g in gates if not g.get("passed")]
    if not gates:
        return "—"
    return f"{len(gates) - len(missed)}/{len(gates)} passed" + (f"; missed {', '.join(missed)}" if missed else "")


def loop_cell(probe: dict[str, Any]) -> str:
    """The probe loop rate, base model → the stage's adapter ("0 → 0.25"), or "—" when the stage was not probed."""
    if "probe/loop_rate" not in probe:
        return "—"
    return f"{number_cell(probe.get('probe/base_loop_rate'))} → {number_cell(probe['probe/loop_rate'])}"


def stage_table(run: Run) -> list[str]:
    """report.md's stage table: one row per stage of summary.json."""
    lines = [
        "| stage | kind | steps | final train loss | held-out reward accuracy | probe tokens ÷ base "
        "| key-point recall drop | loop rate base → stage | gates |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for stage in run.summary.get("stages", []):
        probe, held_out = stage.get("probe") or {}, stage.get("eval") or {}
        lines.append(
            f"| {stage.get('name')} | {stage.get('kind', '?')} | {stage.get('steps', '—')} "
            f"| {number_cell(stage.get('final_train_loss'))} | {number_cell(held_out.get('rewards/accuracies'))} "
            f"| {number_cell(probe.get('probe/mean_tokens_ratio'))} "
            f"| {number_cell(probe.get('probe/key_point_recall_drop'))} "
            f"| {loop_cell(probe)} | {gates_cell(stage)} |"
        )
    return lines


def render_markdown(run: Run, plots: list[Plot]) -> str:
    """report.md: title (recipe, model, status), the stage table, then each plot linked (relative path) with its
    caption, or the reason it was skipped."""
    summary = run.summary
    status = str(summary.get("status", "unknown"))
    if summary.get("failed_stage"):
        status += f" (stage {summary['failed_stage']})"
    header = (
        f"Model `{summary.get('model', '?')}`, status **{status}**, {summary.get('total_steps', '—')} optimizer steps, "
        f"world size {summary.get('world_size', '—')}. Drawn from `metrics.jsonl` and `summary.json`; dashed lines in "
        "the step plots mark stage boundaries."
    )
    title = f"# Run report: {summary.get('recipe', run.root.name)}"
    lines = [title, "", header, "", "## Stages", "", *stage_table(run)]
    missed = [f"- {line}" for stage in summary.get("stages", []) for line in stage.get("gates_missed") or []]
    lines += ["", "Missed gates:", "", *missed] if missed else []
    lines += ["", "## Plots"]
    for plot in plots:
        lines += ["", f"### {plot.title}", ""]
        if plot.reason is None:
            lines += [f"![{plot.title}]({plot.file})", "", plot.caption]
        else:
            lines.append(f"Not drawn (`{plot.file}`): {plot.reason}.")
    return "\n".join(lines) + "\n"


def write_report(output_dir: str | Path) -> list[Path]:
    """Read `OUTPUT/metrics.jsonl` and `OUTPUT/summary.json` (plus probe answers if present), write the plots and
    `report.md` into `OUTPUT/report/`, and return the written files (PNGs in report order, then report.md).

    A missing or broken input raises `AlignError` naming the file.
    """
    run = load_run(output_dir)
    out = run.root / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    plots = [_plot_time_series(run, out, *spec) for spec in TIME_SERIES]
    plots += [_plot_response_lengths(run, out), _plot_probes(run, out)]
    for plot in plots:
        if plot.reason is not None:
            (out / plot.file).unlink(missing_ok=True)  # a stale plot from an earlier report would contradict it
    atomic_write_bytes(out / "report.md", render_markdown(run, plots).encode("utf-8"))
    return [out / plot.file for plot in plots if plot.reason is None] + [out / "report.md"]

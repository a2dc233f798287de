"""`align report`: plots and report.md from a run's metrics.jsonl and summary.json alone (no training, no wandb)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from align.errors import AlignError
from align.report import response_lengths, stage_table, write_report
from align.run_files import StageSpan, boundary_steps, load_run, series, stage_spans

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALL_PLOTS = ["loss.png", "rewards.png", "lengths.png", "response_lengths.png", "probes.png"]


def _probe_row(stage: str, step: int, tuned_tokens: float, recall: float) -> dict:
    """A `probe/*` metrics row as `align.curriculum.check_stage` appends it after a stage."""
    return {
        "stage": stage,
        "step": step,
        "probe/mean_response_tokens": tuned_tokens,
        "probe/key_point_recall": recall,
        "probe/base_mean_response_tokens": 60.0,
        "probe/base_key_point_recall": 0.8,
        "probe/mean_tokens_ratio": tuned_tokens / 60.0,
        "probe/key_point_recall_drop": 0.8 - recall,
    }


def _sft_rows(stage: str = "warmup", steps: int = 4) -> list[dict]:
    """What trl's SFTTrainer logs through `MetricsJsonlCallback`: per-step rows, then the train-end row."""
    rows = [
        {
            "stage": stage,
            "step": s,
            "stage_step": s,
            "loss": 2.5 - 0.1 * s,
            "grad_norm": 1.0,
            "learning_rate": 1e-4,
            "entropy": 2.0,
            "mean_token_accuracy": 0.4 + 0.01 * s,
            "num_tokens": 900.0 * s,
            "epoch": s / steps,
        }
        for s in range(1, steps + 1)
    ]
    rows.append({"stage": stage, "step": steps, "stage_step": steps, "train_runtime": 9.3, "train_loss": 2.3})
    return rows


def _preference_rows(stage: str, offset: int, steps: int) -> list[dict]:
    """What the ContrastiveTrainer logs: per-step rewards/lengths/loss components, a mid-stage and a final eval row
    (`eval_` prefix), the train-end row; one step's loss is non-finite (written as the string "nan")."""
    rows = []
    for s in range(1, steps + 1):
        margin = 0.05 * s
        rows.append(
            {
                "stage": stage,
                "step": offset + s,
                "stage_step": s,
                "loss": 0.69 - margin / 2,
                "rewards/chosen": margin / 2,
                "rewards/rejected": -margin / 2,
                "rewards/margins": margin,
                "rewards/accuracies": min(1.0, 0.5 + 0.1 * s),
                "lengths/chosen": 80.0 - 5 * s,
                "lengths/rejected": 140.0,
                "lengths/chosen_shorter_frac": 0.6 + 0.05 * s,
                "loss/dpo": 0.69 - margin,
                "loss/sft": 1.2,
            }
        )
    rows[2]["loss"] = "nan"
    for s in (steps // 2, steps):
        rows.append(
            {
                "stage": stage,
                "step": offset + s,
                "stage_step": s,
                "eval_loss": 0.6 - 0.01 * s,
                "eval_rewards/margins": 0.04 * s,
                "eval_rewards/accuracies": 0.6 + 0.05 * s,
                "eval_lengths/chosen": 75.0,
                "eval_lengths/rejected": 138.0,
                "eval_lengths/chosen_shorter_frac": 0.8,
                "eval_runtime": 1.0,
            }
        )
    rows.append({"stage": stage, "step": offset + steps, "stage_step": steps, "train_runtime": 3.2, "train_loss": 0.6})
    return rows


def _stage_summary(name: str, kind: str, first: int, steps: int, **extra) -> dict:
    return {
        "name": name,
        "kind": kind,
        "steps": steps,
        "first_step": first,
        "last_step": first + steps - 1,
        "final_train_loss": 0.5,
        "eval": {},
        "probe": {},
        "gates": [],
        **extra,
    }


def _probes_jsonl(path: Path, tuned_tokens: list[int]) -> None:
    """`OUTPUT/<stage>/probes.jsonl` records as `align.evaluation.probes.run_probes` writes them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [
        {
            "prompt": f"question {i}?",
            "base": "long answer",
            "tuned": "short",
            "base_tokens": 50 + 3 * i,
            "tuned_tokens": t,
            "base_key_point_recall": 0.8,
            "tuned_key_point_recall": 0.7,
        }
        for i, t in enumerate(tuned_tokens)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _write_run(root: Path, rows: list[dict], summary: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return root


@pytest.fixture
def two_stage_run(tmp_path) -> Path:
    """A finished sft → preference run: warmup (steps 1–4) then concise (steps 5–10), both with probe answers."""
    rows = _sft_rows() + [_probe_row("warmup", 4, 58.0, 0.78)]
    rows += _preference_rows("concise", offset=4, steps=6) + [_probe_row("concise", 10, 31.0, 0.7)]
    gates = [
        {"gate": "min_pair_accuracy", "limit": 0.6, "value": 0.9, "passed": True},
        {"gate": "max_mean_tokens_ratio", "limit": 0.5, "value": 0.52, "passed": False},
    ]
    stages = [
        _stage_summary("warmup", "sft", 1, 4, probe={k: v for k, v in rows[5].items() if k.startswith("probe/")}),
        _stage_summary(
            "concise",
            "preference",
            5,
            6,
            eval={"loss": 0.54, "rewards/accuracies": 0.9},
            probe={k: v for k, v in rows[-1].items() if k.startswith("probe/")},
            gates=gates,
        ),
    ]
    summary = {
        "recipe": "concise-demo",
        "model": "tiny-llama",
        "world_size": 1,
        "stages": stages,
        "status": "finished",
        "total_steps": 10,
    }
    root = _write_run(tmp_path / "out", rows, summary)
    _probes_jsonl(root / "warmup" / "probes.jsonl", [55, 60, 58, 62])
    _probes_jsonl(root / "concise" / "probes.jsonl", [28, 30, 35, 31])
    return root


def test_stage_spans_come_from_summary_and_boundaries_sit_between_stages():
    """If this fails, the dashed stage lines are drawn at the wrong steps (on a logged point, or off by a stage), or
    a stage still training (absent from summary.json) is not marked at all."""
    summary = {
        "stages": [
            {"name": "warmup", "kind": "sft", "first_step": 1, "last_step": 4},
            {"name": "concise", "kind": "preference", "first_step": 5, "last_step": 10},
        ]
    }
    running = [{"stage": "hard", "step": 11}, {"stage": "hard", "step": 13}]
    spans = stage_spans(summary, running)
    assert spans == [
        StageSpan("warmup", "sft", 1, 4),
        StageSpan("concise", "preference", 5, 10),
        StageSpan("hard", "running", 11, 13),
    ]
    assert boundary_steps(spans) == [4.5, 10.5]
    assert (spans[0].start, spans[-1].end) == (0.5, 13.5)
    assert boundary_steps(spans[:1]) == []


def test_series_keeps_finite_numbers_of_one_stage_in_step_order():
    """If this fails, a non-finite loss (logged as the string "nan") or another stage's points leak into a line."""
    rows = [
        {"stage": "b", "step": 7, "loss": 1.0},
        {"stage": "a", "step": 3, "loss": "nan"},
        {"stage": "a", "step": 2, "loss": 2.0},
        {"stage": "a", "step": 1, "eval_loss": 9.0},
    ]
    assert series(rows, "loss") == ([2, 7], [2.0, 1.0])
    assert series(rows, "loss", "a") == ([2], [2.0])


def test_two_stage_report_writes_every_plot_as_a_png_and_links_it(two_stage_run):
    """If this fails, `align report` misses a plot, writes an empty or non-PNG file, or report.md does not link the
    plots or name the stages."""
    written = write_report(two_stage_run)
    out = two_stage_run / "report"
    assert written == [out / name for name in ALL_PLOTS] + [out / "report.md"]
    for name in ALL_PLOTS:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        assert len(data) > 5000, f"{name} is suspiciously small ({len(data)} bytes)"
        assert (out / name).stat().st_mode & 0o044 == 0o044, f"{name} is not readable by group/others"
    report = (out / "report.md").read_text(encoding="utf-8")
    for name in ALL_PLOTS:
        assert f"]({name})" in report
    assert "| warmup | sft | 4 |" in report and "| concise | preference | 6 |" in report
    assert "concise-demo" in report and "tiny-llama" in report and "finished" in report
    assert "1/2 passed; missed max_mean_tokens_ratio" in report
    assert "Not drawn" not in report
    assert not list(out.glob(".*")), "a temporary file was left behind"


def test_stage_table_shows_the_probe_loop_rate_base_then_stage(tmp_path):
    """A stage whose probes looped in 1 of 4 answers (0.25) where the base model looped in none shows "0 → 0.25" in
    the loop-rate column; a stage without probes shows "—". If this fails, report.md hides that a run started to
    loop, or invents a loop rate for an unprobed stage."""
    probed = _stage_summary("warmup", "sft", 1, 4, probe={"probe/loop_rate": 0.25, "probe/base_loop_rate": 0.0})
    root = _write_run(tmp_path / "out", _sft_rows(), {"stages": [probed, _stage_summary("plain", "sft", 5, 2)]})
    header, _, warmup, plain = stage_table(load_run(root))
    column = header.split(" | ").index("loop rate base → stage")
    assert warmup.split(" | ")[column] == "0 → 0.25" and plain.split(" | ")[column] == "—"


def test_report_is_byte_identical_when_rewritten(two_stage_run):
    """If this fails, the output depends on something besides the inputs (a timestamp in the PNG metadata, an
    unordered iteration), so re-running `align report` on an unchanged run shows spurious changes."""
    first = {path.name: path.read_bytes() for path in write_report(two_stage_run)}
    second = {path.name: path.read_bytes() for path in write_report(two_stage_run)}
    assert first == second


def test_before_after_lengths_come_from_the_last_stage_with_probes(two_stage_run):
    """If this fails, the "after" histogram shows an earlier stage's answers (or the base model's) instead of the
    final adapter's."""
    source, after, base, tuned = response_lengths(load_run(two_stage_run))
    assert "concise/probes.jsonl" in source and after == "after stage concise"
    assert base == [50, 53, 56, 59] and tuned == [28, 30, 35, 31]


def test_lengths_fall_back_to_eval_json_without_probes(tmp_path):
    """If this fails, a run without probe prompts ignores the answers `align eval --output` saved in the folder."""
    root = _write_run(tmp_path / "out", _sft_rows(), {"stages": [_stage_summary("warmup", "sft", 1, 4)]})
    examples = [{"prompt": "q", "answer": "a", "tokens": 12, "base_tokens": 40}, {"prompt": "r", "tokens": 9}]
    (root / "eval.json").write_text(json.dumps({"mean_response_tokens": 10.5, "examples": examples}), "utf-8")
    source, _, base, tuned = response_lengths(load_run(root))
    assert "eval.json" in source and base == [40] and tuned == [12, 9]


def test_sft_only_run_skips_preference_plots_and_says_why(tmp_path):
    """If this fails, an SFT-only run gets empty reward/length plots (or a stale one from an earlier report stays),
    or report.md leaves the reader guessing why a plot is missing."""
    summary = {
        "recipe": "sft-only",
        "model": "tiny-llama",
        "status": "finished",
        "total_steps": 4,
        "stages": [_stage_summary("warmup", "sft", 1, 4)],
    }
    root = _write_run(tmp_path / "out", _sft_rows(), summary)
    (root / "report").mkdir()
    (root / "report" / "rewards.png").write_bytes(PNG_SIGNATURE + b"stale")
    written = write_report(root)
    out = root / "report"
    assert written == [out / "loss.png", out / "report.md"]
    assert (out / "loss.png").read_bytes().startswith(PNG_SIGNATURE)
    for name in ("rewards.png", "lengths.png", "response_lengths.png", "probes.png"):
        assert not (out / name).exists(), name
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "](rewards.png)" not in report
    assert "Not drawn (`rewards.png`)" in report and "only preference stages log them" in report
    assert "no generations were recorded" in report
    assert "| warmup | sft | 4 |" in report


def test_missing_summary_is_a_one_line_error_naming_the_file(tmp_path):
    """If this fails, `align report` on a folder without summary.json crashes with a traceback or a message that does
    not say which file is missing."""
    root = _write_run(tmp_path / "out", _sft_rows(), {"stages": []})
    (root / "summary.json").unlink()
    with pytest.raises(AlignError) as error:
        write_report(root)
    message = str(error.value)
    assert "summary.json" in message and "not found" in message and "\n" not in message
    assert not (root / "report").exists()


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("metrics.jsonl", None, "metrics.jsonl: not found"),
        ("metrics.jsonl", '{"stage": "a", "step": 1}\n{"stage": "a", "st', "metrics.jsonl:2: not valid JSON"),
        ("metrics.jsonl", '{"stage": "a", "loss": 1.0}\n', "metrics.jsonl:1: step:"),
        ("summary.json", '{"recipe": "x", "stag', "summary.json: unreadable"),
        ("summary.json", '["not", "a", "summary"]', "summary.json: is not an `align train` summary"),
    ],
)
def test_broken_inputs_are_one_line_errors(tmp_path, name, text, expected):
    """If this fails, a missing or half-written metrics.jsonl/summary.json gives a traceback instead of one line
    naming the file (and the line, for metrics.jsonl)."""
    root = _write_run(tmp_path / "out", _sft_rows(), {"stages": [_stage_summary("warmup", "sft", 1, 4)]})
    if text is None:
        (root / name).unlink()
    else:
        (root / name).write_text(text, encoding="utf-8")
    with pytest.raises(AlignError) as error:
        write_report(root)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_not_a_folder_is_a_one_line_error(tmp_path):
    """If this fails, a mistyped OUTPUT_DIR gives a traceback instead of saying the folder does not exist."""
    with pytest.raises(AlignError, match="not a folder"):
        write_report(tmp_path / "no-such-run")


def test_cli_report_prints_the_files_and_refuses_a_non_run(two_stage_run, tmp_path, capsys):
    """`align report` is the command users run: it exits 0 listing what it wrote, and 2 with one line for a folder
    that is not a run. If this fails the CLI and `write_report` disagree."""
    from align.cli import main

    assert main(["report", str(two_stage_run)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[-1].endswith("report.md") and any(p.endswith("loss.png") for p in printed)
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err

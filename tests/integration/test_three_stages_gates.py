"""Three stages from one recipe (SFT → easy pairs → hard K-negative contrast with `reference: previous`), probe
prompts and gates after each stage, and a missed gate stopping the run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import align_train_cli

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "tiny" / "curriculum.yaml"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tiny_model_dir, tmp_path_factory):
    """The three-stage run, reported to an offline wandb run (its caches kept in the test folder)."""
    out = tmp_path_factory.mktemp("run") / "out"
    home = tmp_path_factory.mktemp("wandb-home")
    saved = dict(os.environ)
    os.environ.update(
        WANDB_MODE="offline",
        WANDB_DATA_DIR=str(home / "data"),
        WANDB_CACHE_DIR=str(home / "cache"),
        WANDB_CONFIG_DIR=str(home / "config"),
        WANDB_ARTIFACT_DIR=str(home / "artifacts"),
    )
    try:
        result = align_train_cli(RECIPE, out, f"model.name={tiny_model_dir}", "report_to=wandb")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_three_stages_carry_the_adapter_with_one_step_count(run):
    """Each stage writes its adapter and starts where the previous stopped (4 + 4 + 4 steps); if this fails a stage
    was skipped, restarted the step count, or trained a fresh adapter."""
    summary = json.loads((run / "summary.json").read_text())
    assert [s["name"] for s in summary["stages"]] == ["warmup", "easy", "hard"] and summary["status"] == "finished"
    assert [(s["first_step"], s["last_step"]) for s in summary["stages"]] == [(1, 4), (5, 8), (9, 12)]
    for stage in ("warmup", "easy", "hard"):
        assert (run / stage / "adapter" / "adapter_model.safetensors").exists()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    first_hard = next(r for r in rows if r["stage"] == "hard" and "loss/infonca" in r)
    # reference: previous = the easy stage's adapter, frozen: at the first hard step policy == reference.
    assert abs(first_hard["rewards/chosen"]) < 1e-6


def test_probe_figures_and_gates_are_recorded(run):
    """Stages with probe prompts record tuned-vs-base figures in summary.json and metrics.jsonl, the answers in
    OUTPUT/<stage>/probes.jsonl, and each gate's value; if this fails gates check numbers nobody can see."""
    summary = json.loads((run / "summary.json").read_text())
    warmup, easy, hard = summary["stages"]
    for stage in (warmup, easy):
        probe = stage["probe"]
        assert probe["probe/mean_tokens_ratio"] == pytest.approx(
            probe["probe/mean_response_tokens"] / probe["probe/base_mean_response_tokens"]
        )
        assert 0.0 <= probe["probe/key_point_recall"] <= 1.0
        assert all(g["passed"] and g["value"] is not None for g in stage["gates"])
        records = [json.loads(line) for line in (run / stage["name"] / "probes.jsonl").read_text().splitlines()]
        assert len(records) == 4 and all(r["base"] is not None and r["tuned"] is not None for r in records)
    assert {g["gate"] for g in easy["gates"]} == {"min_pair_accuracy", "max_mean_tokens_ratio"}
    # The base answers are generated once and reused, so every stage compares against the same baseline.
    assert warmup["probe"]["probe/base_mean_response_tokens"] == easy["probe"]["probe/base_mean_response_tokens"]
    assert hard["probe"] == {} and hard["gates"] == []
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    probe_rows = [r for r in rows if "probe/mean_tokens_ratio" in r]
    assert [(r["stage"], r["step"]) for r in probe_rows] == [("warmup", 4), ("easy", 8)]


def test_a_missed_gate_stops_the_run_and_says_by_how_much(tiny_model_dir, tmp_path):
    """A limit the stage cannot meet stops the run after that stage with exit 1 and one line naming the gate, the
    figure and the miss; summary.json says which stage; later stages never start."""
    out = tmp_path / "out"
    result = align_train_cli(
        RECIPE, out, f"model.name={tiny_model_dir}", "stages.warmup.eval.gates.max_mean_tokens_ratio=0.01"
    )
    assert result.returncode == 1, result.stderr[-2000:]
    line = next(x for x in result.stderr.splitlines() if x.startswith("gate: "))
    assert "stage 'warmup' missed gate max_mean_tokens_ratio: probe answer length ÷ base model's is" in line
    assert "above the limit 0.01 by" in line and "Traceback" not in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "gate_missed" and summary["failed_stage"] == "warmup"
    assert [s["name"] for s in summary["stages"]] == ["warmup"]
    assert summary["stages"][0]["gates_missed"] == [line.removeprefix("gate: ")]
    assert not (out / "easy").exists()


def test_one_wandb_run_with_a_continuous_axis_and_generation_tables(run):
    """`report_to: wandb` gives ONE run for the three stages: `all/loss` on global steps 1..12 (no restart per stage),
    per-stage keys, held-out eval and probe figures, and a generations table per probed stage — read back with wandb's
    own reader. If this fails, reviewers get a run per stage, a restarting x-axis, or no answers to compare."""
    (run_dir,) = (run / "wandb").glob("offline-run-*")
    done = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    text = json.dumps(records)
    assert sum(r["type"] == "run" for r in records) == 1
    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    steps = [h["global_step"] for h in history if "all/loss" in h]
    assert steps == list(range(1, 13))
    for key in (
        "warmup/loss",
        "easy/rewards/accuracies",
        "hard/loss/infonca",
        "easy/eval/rewards/accuracies",
        "easy/probe/mean_tokens_ratio",
        "all/lengths/chosen",
        "generations/warmup",
        "generations/all",
    ):
        assert key in text, key
    # trl's names too (exact keys), so panels made for trl runs line up: train/<key> on train/global_step, eval/<key>.
    assert [h["train/global_step"] for h in history if "train/loss" in h] == list(range(1, 13))
    assert any("eval/rewards/accuracies" in h for h in history)
    tables = sorted(p.name for p in (run_dir / "files" / "media" / "table" / "generations").rglob("*.table.json"))
    assert any(name.startswith("warmup") for name in tables) and any(name.startswith("easy") for name in tables)

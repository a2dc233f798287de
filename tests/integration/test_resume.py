"""Resume: a run killed with SIGKILL mid-stage, continued with `--resume`, ends with the same adapters as a run
that was never interrupted; finished stages are skipped; logs do not repeat steps; bad resumes are refused."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.conftest import align_train_cli

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "tiny" / "curriculum.yaml"
STAGES = ("warmup", "easy", "hard")
pytestmark = pytest.mark.slow


def _overrides(model_dir) -> list[str]:
    # 4 steps per stage, a checkpoint every 2 steps, dropout 0: the run is deterministic on a CPU.
    return [
        f"model.name={model_dir}",
        "training.save_strategy=steps",
        "training.save_steps=2",
        "training.save_total_limit=5",
    ]


def _cmd(out: Path, overrides: list[str], *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "align", "train", str(RECIPE), "--output-dir", str(out), *extra]
    for override in overrides:
        cmd += ["--set", override]
    return cmd


def _stages_done(out: Path) -> int:
    try:
        return len(json.loads((out / "summary.json").read_text())["stages"])
    except (OSError, ValueError, KeyError):
        return 0


def _kill_at(out: Path, overrides: list[str], stage: str, step: int | None) -> None:
    """Start a run and SIGKILL it as soon as `stage` has a complete checkpoint at `step` — or, with `step` None, as
    soon as summary.json records `stage` as done (between that stage and the next)."""
    marker = out / stage / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json"
    reached = (lambda: marker.exists()) if step else (lambda: _stages_done(out) > STAGES.index(stage))
    process = subprocess.Popen(_cmd(out, overrides), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not reached() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert reached(), process.stderr.read().decode()[-2000:]


def _adapter(out: Path, stage: str) -> dict:
    return load_file(str(out / stage / "adapter" / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "out"
    result = align_train_cli(RECIPE, out, *_overrides(tiny_model_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.mark.parametrize(
    ("stage", "step"),
    [("warmup", 2), ("warmup", None), ("hard", 2)],
    ids=["inside-sft", "between-stages", "inside-k-negatives"],
)
def test_resumed_run_equals_uninterrupted(uninterrupted, tiny_model_dir, tmp_path, stage, step):
    """A three-stage run killed with SIGKILL inside the SFT stage, between the SFT and DPO stages, or inside the
    K-negative stage (reference: previous), then resumed: every stage's final adapter equals the uninterrupted run's
    within 1e-5, and metrics.jsonl has each global step exactly once. If this fails, resume loses
    optimizer/RNG/data position, retrains a finished stage, rebuilds the wrong reference, or double-logs steps."""
    out = tmp_path / "out"
    overrides = _overrides(tiny_model_dir)
    _kill_at(out, overrides, stage, step)
    assert json.loads((out / "summary.json").read_text())["status"] == "running"
    result = subprocess.run(_cmd(out, overrides, "--resume"), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["resumed"] is True and summary["total_steps"] == 12
    for name in STAGES:
        expected, got = _adapter(uninterrupted, name), _adapter(out, name)
        assert expected.keys() == got.keys()
        worst = max(float((expected[k] - got[k]).abs().max()) for k in expected)
        assert worst < 1e-5, (name, worst)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    assert steps == list(range(1, 13))


def test_refusals_and_repeatable_resume(uninterrupted, tiny_model_dir, tmp_path):
    """A fresh run will not write over an existing one; a changed recipe cannot resume; `--overwrite` replaces. Each
    refusal is one line and exit 2 — if this fails, runs mix silently. `--resume` is safe to repeat (a requeued job
    reruns its command line): on a finished run it says so and exits 0 without training; on a folder with no run
    yet it starts one — if this fails, a requeued job fails, or trains a finished run again."""
    overrides = _overrides(tiny_model_dir)
    summary_before = (uninterrupted / "summary.json").read_text()
    finished = subprocess.run(_cmd(uninterrupted, overrides, "--resume"), capture_output=True, text=True)
    assert finished.returncode == 0 and "this run already finished; nothing to resume" in finished.stdout
    assert (uninterrupted / "summary.json").read_text() == summary_before
    again = subprocess.run(_cmd(uninterrupted, overrides), capture_output=True, text=True)
    assert again.returncode == 2 and "already holds a run; pass --resume" in again.stderr
    out = tmp_path / "out"
    _kill_at(out, overrides, "warmup", 2)
    changed = subprocess.run(
        _cmd(out, [*overrides, "training.learning_rate=0.5"], "--resume"), capture_output=True, text=True
    )
    assert changed.returncode == 2 and "the recipe differs from the run's at training.learning_rate" in changed.stderr
    assert "Traceback" not in changed.stderr + again.stderr + finished.stderr
    nothing = subprocess.run(_cmd(tmp_path / "empty", overrides, "--resume"), capture_output=True, text=True)
    assert nothing.returncode == 0 and "no run to resume there yet (no summary.json); starting a fresh run" in (
        nothing.stderr
    )
    fresh = json.loads((tmp_path / "empty" / "summary.json").read_text())
    assert fresh["status"] == "finished" and fresh["resumed"] is False and fresh["total_steps"] == 12
    replaced = subprocess.run(_cmd(out, overrides, "--overwrite"), capture_output=True, text=True)
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text())["resumed"] is False

"""The training benchmark script runs end to end on the tiny model (a smoke test of its measuring, not a timing)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_bench_prints_one_object_per_system_and_the_ratios(tmp_path, tiny_model_dir):
    """Both systems train the same batches: their per-step losses agree (align's DPO is trl's sigmoid loss), every
    figure the docs quote is present and positive. If this fails, `make bench` reports numbers of different work."""
    out = tmp_path / "bench.jsonl"
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "bench_train.py"),
        "--model",
        str(tiny_model_dir),
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--max-length",
        "128",
        "--output",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    trl, ours, ratios = (json.loads(line) for line in out.read_text().splitlines())
    assert (trl["system"], ours["system"], ratios["system"]) == ("trl", "align", "align/trl")
    for result in (trl, ours):
        assert result["real_tokens_per_s"] > 0 and result["peak_memory_gib"] > 0 and result["mfu"] > 0
        assert len(result["losses"]) == 3 and result["timed_steps"] == 2
    # trl pads; align's packed rows run each prompt once, so it runs fewer tokens than the rows hold.
    assert trl["padded_per_real"] >= 1.0 > ours["padded_per_real"] and ours["layout"] == "packed"
    assert ratios["max_step_loss_difference"] < 1e-3


def test_bench_reference_free_loss_compares_with_trl_simpo(tmp_path, tiny_model_dir):
    """`--loss simpo`: trl's CPOTrainer (loss_type simpo, no NLL term) against align's simpo on the same rows; the
    losses agree to 1e-3 (trl's CPO tokenises separately, which moves them by ~1e-4). If this fails, the
    reference-free figures in docs/performance.md compare different objectives."""
    out = tmp_path / "bench.jsonl"
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "bench_train.py"),
        "--model",
        str(tiny_model_dir),
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--max-length",
        "128",
        "--loss",
        "simpo",
        "--output",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    trl, ours, ratios = (json.loads(line) for line in out.read_text().splitlines())
    assert trl["loss"] == ours["loss"] == "simpo"
    assert ratios["max_step_loss_difference"] < 1e-3

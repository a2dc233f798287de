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


def test_bench_sft_mode_compares_with_stock_sft_trainer(tmp_path, tiny_model_dir):
    """`--mode sft`: stock trl SFTTrainer against align's packed SFT trainer on the demo's SFT rows: both train the
    same batches to the same per-step losses (1e-4), align's rows carry no padding while trl's do, and every figure
    the docs quote is present and positive. If this fails, the SFT figures in docs/performance.md compare different
    work or an unequal loss."""
    out = tmp_path / "bench.jsonl"
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "bench_train.py"),
        "--mode",
        "sft",
        "--model",
        str(tiny_model_dir),
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--micro-batch-tokens",
        "256",
        "--output",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    trl, ours, ratios = (json.loads(line) for line in out.read_text().splitlines())
    assert (trl["mode"], ours["mode"], trl["loss"]) == ("sft", "sft", "sft")
    assert (trl["layout"], ours["layout"], ours["max_length"]) == ("padded", "packed", 192)
    for result in (trl, ours):
        assert result["real_tokens_per_s"] > 0 and result["peak_memory_gib"] > 0 and result["mfu"] > 0
        assert len(result["losses"]) == 3 and result["timed_steps"] == 2
    assert trl["padded_per_real"] > 1.0 == ours["padded_per_real"]
    assert ratios["max_step_loss_difference"] < 1e-4

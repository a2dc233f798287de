"""A short-named model on a cold cache under `accelerate launch` with two processes, as users launch it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from align.models.cache import MARKER

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "tiny" / "sft_then_dpo.yaml"
pytestmark = pytest.mark.slow


def _train(cache: Path, out: Path, processes: int, port: int) -> subprocess.CompletedProcess:
    """`align train` of the two-stage tiny recipe with `model.name=tiny-llama` (a short name) on `cache`."""
    cmd = ["-m", "align", "train", str(RECIPE), "--set", "model.name=tiny-llama", "--output-dir", str(out)]
    if processes > 1:
        accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
        cmd = [
            accelerate,
            "launch",
            "--multi_gpu",
            "--num_processes",
            str(processes),
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            str(port),
            *cmd,
        ]
    else:
        cmd = [sys.executable, *cmd]
    env = {**os.environ, "ALIGN_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def test_two_processes_on_a_cold_cache_then_one_on_the_warm_cache(tmp_path):
    """Two ranks start on an empty ALIGN_CACHE: one prepares tiny-llama while the other waits, both train (exit 0,
    no traceback), and the cache holds one complete folder (config, weights, tokenizer, marker) and its lock file,
    nothing else. A one-process run on that cache then reuses it untouched. If this fails, ranks race on the cache
    as they did (one renamed a tokenizer-only folder into place, the other died with `Directory not empty`, and
    every later run failed until the cache was deleted by hand)."""
    cache = tmp_path / "cache"
    two = _train(cache, tmp_path / "two", processes=2, port=29561)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "Traceback" not in two.stderr and "rebuilding" not in two.stderr
    models = cache / "models"
    assert sorted(p.name for p in models.iterdir()) == [".tiny-llama.lock", "tiny-llama"]
    marker = json.loads((models / "tiny-llama" / MARKER).read_text())
    assert marker["name"] == "tiny-llama"
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(marker["files"])
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["world_size"] == 2
    prepared_at = (models / "tiny-llama" / MARKER).stat().st_mtime_ns

    one = _train(cache, tmp_path / "one", processes=1, port=0)
    assert one.returncode == 0, one.stderr[-3000:]
    assert "Traceback" not in one.stderr and "model cache" not in one.stderr
    assert (models / "tiny-llama" / MARKER).stat().st_mtime_ns == prepared_at


def test_the_folder_the_old_race_left_is_rebuilt_with_one_line(tmp_path):
    """The cache as the old race left it (models/tiny-llama holding only the tokenizer, on which every run died with
    `OSError: Directory not empty`): a run rebuilds it, says so in one line, and trains. If this fails, users must
    find and delete the cache by hand."""
    cache = tmp_path / "cache"
    broken = cache / "models" / "tiny-llama"
    broken.mkdir(parents=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (broken / name).write_text("{}")
    result = _train(cache, tmp_path / "out", processes=1, port=0)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "model cache" in line]
    assert len(lines) == 1 and f"{broken} is incomplete (no {MARKER} marker" in lines[0] and "rebuilding" in lines[0]
    assert (broken / "model.safetensors").is_file()

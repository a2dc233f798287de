"""Shared fixtures: an isolated model cache, offline trackers, and one tiny model per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Short-named models are prepared into a fresh per-session cache, so tests exercise the preparation itself and
    never touch the user's `~/.cache/align` (set ALIGN_TEST_CACHE to reuse a cache between local runs)."""
    os.environ["ALIGN_CACHE"] = os.environ.get("ALIGN_TEST_CACHE") or str(tmp_path_factory.mktemp("align-cache"))
    yield


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama folder with a byte-level tokenizer trained on the shipped data (built once)."""
    from align.models import build_tiny_model

    corpus = (REPO / "data" / "concise" / "sft.jsonl").read_text(encoding="utf-8").splitlines()
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", corpus=corpus, vocab_size=1024)


def align_train_cli(recipe: Path, output_dir: Path, *overrides: str):
    """Run `python -m align train RECIPE --set ... --output-dir OUT` as a user would; return the finished process."""
    import subprocess
    import sys

    from align.progress import LIBRARY_BAR_SWITCHES

    cmd = [sys.executable, "-m", "align", "train", str(recipe), "--output-dir", str(output_dir)]
    for override in overrides:
        cmd += ["--set", override]
    # Without the library bar switches an in-process `align` call of an earlier test set: the run decides itself.
    env = {key: value for key, value in os.environ.items() if key not in LIBRARY_BAR_SWITCHES}
    return subprocess.run(cmd, capture_output=True, text=True, env={**env, "PYTHONUNBUFFERED": "1"})


@pytest.fixture
def write(tmp_path):
    """`write(name, text)` → a file under the test's tmp folder."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def recipe_dir(write):
    """`write` in a folder that already holds `pairs.jsonl` (one valid row), for recipes to point at."""
    write("pairs.jsonl", '{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    return write

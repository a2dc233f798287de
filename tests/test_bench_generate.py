"""The generation benchmark script runs end to end on the tiny model (a smoke test of its measuring, not a timing)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("generate_flags", [[], ["--generate-cache", "static", "--batch-size", "2"]])
def test_bench_prints_both_systems_per_round_and_the_ratios(tmp_path, tiny_model_dir, generate_flags):
    """Two rounds of generate-then-align on 3 prompts with a LoRA adapter (plain generate with its default cache, or
    a static cache in batches of 2): both systems' answers are identical (the script exits 0 only then), every
    figure the docs quote is present and positive, and the summary holds one ratio per round. If this fails,
    `scripts/bench_generate.py` reports numbers of different work or none at all."""
    out = tmp_path / "bench.jsonl"
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "bench_generate.py"),
        "--model",
        str(tiny_model_dir),
        "--count",
        "3",
        "--max-new-tokens",
        "6",
        "--lora-rank",
        "4",
        "--repeats",
        "2",
        "--output",
        str(out),
        *generate_flags,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["system"] for line in lines] == ["generate", "align", "generate", "align", "align/generate"]
    for result in lines[:4]:
        assert result["answers_per_s"] > 0 and result["tokens_per_s"] > 0 and result["prompts"] == 3
        assert 3 <= result["new_tokens"] <= 18
    assert lines[0]["new_tokens"] == lines[1]["new_tokens"]
    assert lines[0]["cache"] == ("static" if generate_flags else "dynamic") and lines[0]["compiled"] is False
    summary = lines[-1]
    assert summary["identical_answers"] and len(summary["answers_per_s_ratio"]) == 2
    assert summary["median_tokens_per_s_ratio"] > 0


def test_mismatches_name_the_prompt_and_the_first_differing_token():
    """The script's equality check: equal answers give no lines; an answer that differs at its third token, or stops
    early, is named with where it differs. If this fails, a broken decode loop would be reported as a speed-up."""
    spec = importlib.util.spec_from_file_location("bench_generate", REPO / "scripts" / "bench_generate.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    prompts = ["first prompt", "second prompt", "third prompt"]
    reference = [[5, 6, 7, 2], [8, 9], [1, 1, 1]]
    assert bench.mismatches(reference, [list(a) for a in reference], prompts) == []
    lines = bench.mismatches(reference, [[5, 6, 4, 2], [8, 9], [1, 1]], prompts)
    assert len(lines) == 2
    assert lines[0].startswith("prompt 0 ('first prompt'): differs at new token 2: [7, 2] vs [4, 2]")
    assert lines[1].startswith("prompt 2 ('third prompt'): differs at new token 2: [1] vs []")


def test_time_sampling_reports_every_answer(tiny_model_dir):
    """`scripts/time_sampling.py` on 3 prompts, 2 samples + greedy, 5 tokens, batch left to the budget: 9 answers,
    each prompt's greedy length within the cap and the token count consistent with them. If this fails, the script
    docs/performance.md quotes for sampling times measures other work than it says."""
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "time_sampling.py"),
        "--model",
        str(tiny_model_dir),
        "--count",
        "3",
        "--samples",
        "2",
        "--max-new-tokens",
        "5",
        "--batch-size",
        "0",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["prompts"], result["answers"]) == (3, 9)
    assert len(result["greedy_tokens"]) == 3 and all(0 < t <= 5 for t in result["greedy_tokens"])
    assert sum(result["greedy_tokens"]) <= result["new_tokens"] <= 9 * 5 and result["seconds"] >= 0

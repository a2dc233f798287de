"""`align data build PROMPTS -o OUT --sample-from MODEL [--adapter DIR]`: on-policy rows from the command line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _build(*args):
    return subprocess.run([sys.executable, "-m", "align", "data", "build", *args], capture_output=True, text=True)


@pytest.fixture
def prompts(tmp_path) -> Path:
    lines = (REPO / "data" / "concise" / "train_prompts.jsonl").read_text().splitlines()[:3]
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("rows", ["pairs", "kto", "sft"])
def test_rows_from_a_model_and_its_prompts(tiny_model_dir, prompts, tmp_path, rows):
    """3 prompts × 2 samples from the tiny model (+ each prompt's reference): pairs (chosen scored above rejected),
    kto rows (labelled; the references clear the bar, so some are desirable) or sft rows (one per prompt at most),
    written with a report that counts the 6 sampled answers. If this fails, the command line cannot make the rows
    a recipe's `data.generate` makes."""
    out = tmp_path / "rows.jsonl"
    flags = ["--sample-from", str(tiny_model_dir), "--samples", "2", "--max-new-tokens", "8", "--rows", rows]
    result = _build(str(prompts), "-o", str(out), *flags)
    assert result.returncode == 0, result.stderr[-2000:]
    written = [json.loads(line) for line in out.read_text().splitlines()]
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["sampling"]["answers_sampled"] == 6 and report["rows"] == len(written) > 0
    assert report["model"] == str(tiny_model_dir) and "wrote" in result.stdout
    if rows == "pairs":
        assert all(r["chosen_score"] > r["rejected_score"] for r in written)
    elif rows == "kto":
        assert {r["label"] for r in written} == {True, False}
    else:
        assert len(written) <= 3 and all(r["score"] >= 0.5 for r in written)


def test_greedy_answers_join_the_candidates(tiny_model_dir, prompts, tmp_path):
    """`--greedy`: each of the 3 prompts gets its greedy answer besides its 2 samples (9 answers), and the report
    says how often the greedy answers loop and are cut (the tiny model runs every answer to the 8-token cap). If
    this fails, the recipe's `include_greedy` reaches neither the sampler nor the report."""
    out = tmp_path / "rows.jsonl"
    flags = ["--sample-from", str(tiny_model_dir), "--samples", "2", "--max-new-tokens", "8", "--greedy"]
    result = _build(str(prompts), "-o", str(out), *flags)
    assert result.returncode == 0, result.stderr[-2000:]
    sampling = json.loads(out.with_suffix(".report.json").read_text())["sampling"]
    assert sampling["answers_sampled"] == 9
    assert sampling["greedy_cut_rate"] == 1.0 and 0.0 <= sampling["greedy_loop_rate"] <= 1.0


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--sample-from", "tiny-llama", "--samples", "0"], "--samples: 0 must be a whole number ≥ 1"),
        (["--sample-from", "tiny-llama", "--top-p", "0"], "--top-p: 0.0 must be in (0, 1]"),
        (["--sample-from", "tiny-llama", "--rows", "kto", "--loop-pairs"], "--loop-pairs: makes pairs"),
        (["--adapter", "somewhere"], "--adapter: samples answers with an adapter: give --sample-from MODEL too"),
        (["--sample-from", "tiny-llama", "--adapter", "."], "not a PEFT adapter folder"),
        (["--sample-from", "tiny-llama", "--backend", "vllm", "--vllm", "seed=3"], "--vllm: is set by align"),
        (["--sample-from", "tiny-llama", "--vllm", "enforce_eager=true"], "--vllm: is set but `backend` is not"),
        (["--sample-from", "tiny-llama", "--backend", "vllm", "--batch-size", "4"], "--batch-size: vLLM forms"),
        (["--sample-from", "tiny-llama", "--vllm", "enforce_eager"], "--vllm: 'enforce_eager': give NAME=VALUE"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(prompts, tmp_path, flags, words):
    """Bad sampling flags and an adapter without a model: exit 2, one line naming the flag. If this fails, a typo
    costs a model load and a traceback."""
    result = _build(str(prompts), "-o", str(tmp_path / "rows.jsonl"), *flags)
    assert result.returncode == 2 and words in result.stderr, result.stderr[-2000:]
    assert len(result.stderr.strip().splitlines()) == 1


def test_vllm_backend_without_vllm_is_one_line_and_exit_2(tiny_model_dir, prompts, tmp_path):
    """`--backend vllm` on a machine without vLLM (this CPU): exit 2, one line saying why and to use align's
    backend, before the model loads. If this fails, a user gets a traceback from
    an import deep in sampling, or the rows silently come from another sampler than the one asked for."""
    out = tmp_path / "rows.jsonl"
    flags = ["--sample-from", str(tiny_model_dir), "--backend", "vllm", "--vllm", "gpu_memory_utilization=0.5"]
    result = _build(str(prompts), "-o", str(out), *flags)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "vLLM is not installed" in result.stderr and "set backend: align" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_validate_lists_rounds_and_marks_on_policy_stages():
    """`align validate` names every round as the stage it runs as and marks the on-policy ones. If this fails, a
    recipe author cannot see from validate that a stage samples, or how many stages it becomes."""
    result = subprocess.run(
        [sys.executable, "-m", "align", "validate", str(REPO / "recipes" / "tiny" / "on_policy.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "3 stage(s): warmup (sft, sft (trl)), self-round1 (preference, dpo, on-policy: 3 samples" in result.stdout
    assert "self (preference, dpo, on-policy: 3 samples per prompt)" in result.stdout

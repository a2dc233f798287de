"""Two stages from one recipe: SFT warm-up → DPO, the adapter carried forward, one continuous step count."""

import json
from pathlib import Path

import pytest

from tests.conftest import align_train_cli

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_stage_run(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    result = align_train_cli(REPO / "recipes" / "tiny" / "sft_then_dpo.yaml", out, f"model.name={tiny_model_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_both_stages_write_adapters_and_steps_continue(two_stage_run):
    """Stage 2's steps follow stage 1's (6 SFT steps, then 6 DPO steps: global steps 1..12, no restart)."""
    out = two_stage_run
    summary = json.loads((out / "summary.json").read_text())
    warmup, concise = summary["stages"]
    assert (warmup["name"], warmup["kind"], concise["kind"]) == ("warmup", "sft", "preference")
    assert (warmup["first_step"], warmup["last_step"]) == (1, 6)
    assert (concise["first_step"], concise["last_step"]) == (7, 12)
    assert summary["total_steps"] == 12
    for stage in ("warmup", "concise"):
        assert (out / stage / "adapter" / "adapter_model.safetensors").exists()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    assert steps == list(range(1, 13))
    assert {r["stage"] for r in rows if r["step"] <= 6 and "loss" in r} == {"warmup"}


def test_sft_stage_lowered_the_completion_loss(two_stage_run):
    """The SFT stage trained packed rows through the completion-only head (its summary says so) and its loss went
    down. If this fails the SFT stage did not train on the completions (or evaluated nothing), or fell back to stock
    SFTTrainer's padded layout on a family align has proven packable."""
    summary = json.loads((two_stage_run / "summary.json").read_text())
    warmup = summary["stages"][0]
    assert warmup["layout"] == {"batch_layout": "packed", "why": None, "log_probs": "completion-only head"}
    rows = [json.loads(line) for line in (two_stage_run / "metrics.jsonl").read_text().splitlines()]
    first = next(r for r in rows if r["stage"] == "warmup" and "loss" in r)
    assert warmup["final_train_loss"] < first["loss"]
    assert "loss" in warmup["eval"]


def test_adapter_was_carried_into_the_preference_stage(two_stage_run):
    """With `reference: base` and the SFT adapter carried over, the policy already differs from the reference at the
    first DPO step, so the implicit rewards β·(π − ref) are non-zero (a fresh adapter gives exactly 0, as the
    single-stage test checks through its first loss of log 2)."""
    rows = [json.loads(line) for line in (two_stage_run / "metrics.jsonl").read_text().splitlines()]
    first_dpo = next(r for r in rows if r["stage"] == "concise" and "loss/dpo" in r)
    assert abs(first_dpo["rewards/chosen"]) > 1e-3 and abs(first_dpo["rewards/rejected"]) > 1e-3


def test_reference_previous_is_a_frozen_copy_of_the_carried_adapter(tiny_model_dir, tmp_path):
    """`reference: previous`: at the first DPO step the policy equals its reference (the SFT adapter, frozen), so the
    rewards are exactly 0 and the DPO term is log 2; later the policy moves away from it while the copy stays put."""
    from align.curriculum import run_recipe
    from align.recipe import load_recipe

    loaded = load_recipe(
        REPO / "recipes" / "tiny" / "sft_then_dpo.yaml",
        [f"model.name={tiny_model_dir}", "stages.concise.reference=previous"],
    )
    summary = run_recipe(loaded, tmp_path / "out")
    rows = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    dpo_rows = [r for r in rows if r["stage"] == "concise" and "loss/dpo" in r]
    assert dpo_rows[0]["rewards/chosen"] == 0.0 and dpo_rows[0]["rewards/rejected"] == 0.0
    assert dpo_rows[0]["loss/dpo"] == pytest.approx(0.693147, abs=1e-5)
    assert dpo_rows[-1]["rewards/margins"] != 0.0
    assert summary["stages"][1]["steps"] == 6


def test_adapter_new_starts_from_the_base_model(tiny_model_dir, tmp_path):
    """`adapter: new` after an SFT stage: the DPO stage's fresh adapter equals the base (its reference), so its first
    rewards are exactly 0 and the DPO term log 2; with `continue` they are not (see the carried-adapter test)."""
    from align.curriculum import run_recipe
    from align.recipe import load_recipe

    loaded = load_recipe(
        REPO / "recipes" / "tiny" / "sft_then_dpo.yaml",
        [f"model.name={tiny_model_dir}", "stages.concise.adapter=new"],
    )
    run_recipe(loaded, tmp_path / "out")
    rows = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    first_dpo = next(r for r in rows if r["stage"] == "concise" and "loss/dpo" in r)
    assert first_dpo["rewards/chosen"] == 0.0 and first_dpo["rewards/rejected"] == 0.0
    assert first_dpo["loss/dpo"] == pytest.approx(0.693147, abs=1e-5)
    assert (tmp_path / "out" / "warmup" / "adapter" / "adapter_model.safetensors").exists()

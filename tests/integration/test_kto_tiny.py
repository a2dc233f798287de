"""SFT warm-up → KTO on unpaired feedback (recipes/tiny/sft_then_kto.yaml): trl's KTOTrainer trains the carried
adapter, its loss falls, and the run's files record the kto stage."""

import json
from pathlib import Path

import pytest

from tests.conftest import align_train_cli

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "tiny" / "sft_then_kto.yaml"
pytestmark = pytest.mark.slow


def _rows(out: Path, stage: str) -> list[dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["stage"] == stage and "loss" in r]


@pytest.fixture(scope="module")
def kto_run(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    result = align_train_cli(RECIPE, out, f"model.name={tiny_model_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_summary_records_the_kto_stage_and_its_loss(kto_run):
    """summary.json: the second stage is kind kto with trl's KTO loss, steps 7..12 after the 6 SFT steps, held-out
    KTO figures (margins, KL), and an adapter. If this fails, the kind's trainer, reporting or step count broke."""
    summary = json.loads((kto_run / "summary.json").read_text())
    warmup, feedback = summary["stages"]
    assert (warmup["kind"], feedback["kind"]) == ("sft", "kto")
    assert feedback["loss"] == [{"name": "kto (trl)", "weight": 1.0}]
    assert (feedback["first_step"], feedback["last_step"], feedback["train_rows"]) == (7, 12, 24)
    assert isinstance(feedback["final_train_loss"], float)
    assert {"loss", "kl", "rewards/margins", "rewards/chosen", "rewards/rejected"} <= set(feedback["eval"])
    assert feedback["dropped_prompt_over_max_length"] == 0
    assert (kto_run / "feedback" / "adapter" / "adapter_model.safetensors").exists()


def test_the_kto_loss_falls(kto_run):
    """Logged KTO losses at global steps 7..12: the last two average below the first two, and the final one is
    below the first. If this fails, the KTO stage is not optimising its loss (wrong labels, a frozen adapter)."""
    rows = _rows(kto_run, "feedback")
    losses = [r["loss"] for r in rows]
    assert [r["step"] for r in rows] == list(range(7, 13))
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 and losses[-1] < losses[0], losses


def test_the_warmup_adapter_is_carried_into_the_kto_stage(kto_run):
    """With `reference: base` (the adapter disabled) and the SFT adapter carried over, the policy already differs
    from the reference at the first KTO step: non-zero rewards and KL. A fresh adapter (B = 0) equals the base
    model there, giving exactly 0 (the `reference: previous` test shows that exact 0). If this fails, the kto
    stage started from a fresh adapter."""
    first = _rows(kto_run, "feedback")[0]
    assert abs(first["rewards/chosen"]) > 1e-3 and first["kl"] > 1e-3, first


def test_reference_previous_is_a_frozen_copy_of_the_carried_adapter(tiny_model_dir, tmp_path):
    """`reference: previous`: trl copies the carried adapter as the frozen `ref` adapter, so at the first KTO step
    policy and reference agree exactly (rewards and KL 0, loss 0.5 = 1 − σ(0)). If this fails, KTO's reference is
    not the previous stage's adapter (or the policy never moves away from it)."""
    from align.curriculum import run_recipe
    from align.recipe import load_recipe

    overrides = [f"model.name={tiny_model_dir}", "stages.feedback.reference=previous"]
    overrides += ["stages.warmup.data.max_rows=8", "stages.feedback.data.max_rows=8"]
    loaded = load_recipe(RECIPE, overrides)
    run_recipe(loaded, tmp_path / "out")
    rows = _rows(tmp_path / "out", "feedback")
    assert rows[0]["kl"] == 0.0 and rows[0].get("rewards/chosen", 0.0) == 0.0
    assert rows[0]["loss"] == pytest.approx(0.5, abs=1e-6)
    assert rows[-1]["loss"] != pytest.approx(0.5, abs=1e-6), rows  # the policy moved away from its frozen copy

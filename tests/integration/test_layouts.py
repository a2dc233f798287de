"""Packed batches (with and without micro-batches) train exactly as trl's padded batches: same losses and metrics."""

import json
from pathlib import Path

import pytest

from align.curriculum import run_recipe
from align.recipe import load_recipe
from align.training import packing as packing

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
COMPARED = ("loss", "rewards/accuracies", "rewards/margins", "logps/chosen", "lengths/rejected", "rewards/length_corr")


def _metrics(tiny_model_dir, out, recipe: str, stage: str, *overrides: str) -> list[dict]:
    loaded = load_recipe(
        REPO / "recipes" / "tiny" / recipe,
        [f"model.name={tiny_model_dir}", *(f"stages.{stage}.{o}" for o in overrides)],
    )
    run_recipe(loaded, out)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{key: r[key] for key in COMPARED} for r in rows if "loss" in r and r.get("stage") == stage]


@pytest.mark.parametrize(("recipe", "stage"), [("dpo.yaml", "concise"), ("multi_negative.yaml", "contrast")])
def test_packed_and_micro_batched_train_like_padded(recipe, stage, tiny_model_dir, tmp_path, monkeypatch):
    """Same seed and rows through `batch_layout: padded`, `packed`, and `packed` split into micro-batches of at most
    64 tokens (several passes per step): every step's loss and metrics agree to 1e-4, over several optimizer steps
    (so the gradients agreed too), for pairs and for K negatives.

    If this fails, the packed layout or the micro-batch accumulation trains a different model than trl's layout.
    """
    padded = _metrics(tiny_model_dir, tmp_path / "padded", recipe, stage, "batch_layout=padded")
    packed = _metrics(tiny_model_dir, tmp_path / "packed", recipe, stage, "batch_layout=packed")
    parts = []

    def counting_split(batch, max_tokens, count=None):
        parts.append(len(packing.split_packed(batch, max_tokens, count)))
        return packing.split_packed(batch, max_tokens, count)

    monkeypatch.setattr("align.training.trainer.split_packed", counting_split)
    micro = _metrics(tiny_model_dir, tmp_path / "micro", recipe, stage, "micro_batch_tokens=64")
    assert parts and min(parts) > 1, "micro_batch_tokens=64 did not split the batches"
    assert len(padded) >= 3
    for step, (a, b, c) in enumerate(zip(padded, packed, micro, strict=True)):
        # At the first step policy = reference, so reward margins are float rounding noise and so is their
        # correlation with length. Later, margins that differ by 1e-5 move a correlation over 4 pairs whose lengths
        # differ by a token or two by up to ~1e-3: it gets a looser tolerance.
        for key in COMPARED[:-1] if step == 0 else COMPARED:
            tolerance = 1e-2 if key == "rewards/length_corr" else 1e-4
            assert b[key] == pytest.approx(a[key], rel=1e-6, abs=tolerance), key
            assert c[key] == pytest.approx(a[key], rel=1e-6, abs=tolerance), key


def test_stage_summary_says_which_layout_ran_and_why(tiny_model_dir, tmp_path, caplog):
    """A MoE model with the router loss on (Mixtral, router_aux_loss_coef 0.05) asks for packed batches but trains
    padded: summary.json's stage entry records the layout, why, and the log-prob path, and the log says it once; the
    router loss reaches the metrics. If this fails, a user cannot tell which layout trained their model."""
    from align.models import load_tokenizer
    from tests.training.conformance import build_family

    tokenizer = load_tokenizer(str(tiny_model_dir))
    model_dir = tmp_path / "mixtral"
    build_family("mixtral-router-loss", len(tokenizer)).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    out = tmp_path / "out"
    loaded = load_recipe(
        REPO / "recipes" / "tiny" / "dpo.yaml", [f"model.name={model_dir}", "stages.concise.training.max_steps=2"]
    )
    summary = run_recipe(loaded, out)
    layout = summary["stages"][0]["layout"]
    assert layout["batch_layout"] == "padded" and layout["log_probs"] == "completion-only head"
    assert "router_aux_loss_coef 0.05" in layout["why"]
    assert caplog.text.count("packed batches are off") == 1
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(row["aux_loss"] > 0 for row in rows if "loss" in row)

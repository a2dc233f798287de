"""Probe prompts after a stage: figures worked by hand from known answers, the base answers generated once, and
one real generation on the tiny model."""

import json
import math

import pytest

from align.evaluation import probes
from align.evaluation.probes import BaseAnswers, load_probe_prompts, probe_figures, run_probes
from tests.evaluation.probe_fakes import BASE, PROMPTS, FakeModel, fake_generate

# No probe answer of probe_fakes loops, and none reaches max_new_tokens = 16.
NO_LOOPS = {"base_loops": False, "tuned_loops": False, "base_truncated": False, "tuned_truncated": False}


def test_probe_figures_by_hand():
    """Tuned 6 tokens vs base 8 → ratio 0.75; recall 0.5 vs 0.75 → drop 0.25 (base − tuned, so positive = worse).
    If this fails, the length gate or the recall gate reads a wrong figure (e.g. base ÷ tuned, or tuned − base)."""
    figures = probe_figures(
        {"mean_response_tokens": 6.0, "key_point_recall": 0.5}, {"mean_response_tokens": 8.0, "key_point_recall": 0.75}
    )
    assert figures == {
        "probe/mean_response_tokens": 6.0,
        "probe/key_point_recall": 0.5,
        "probe/base_mean_response_tokens": 8.0,
        "probe/base_key_point_recall": 0.75,
        "probe/mean_tokens_ratio": 0.75,
        "probe/key_point_recall_drop": 0.25,
    }


def test_probe_figures_without_key_points_or_base_tokens():
    """No key points on either side: no recall drop figure (so its gate reports "not measured" instead of a made-up
    0). A base model that answered nothing: the ratio is +inf, which fails any length ceiling. If this fails, a gate
    passes on a figure nobody measured, or the run divides by zero."""
    figures = probe_figures({"mean_response_tokens": 3.0}, {"mean_response_tokens": 0.0})
    assert "probe/key_point_recall_drop" not in figures
    assert figures["probe/mean_tokens_ratio"] == math.inf


def test_loop_rate_increase_is_tuned_minus_base():
    """Tuned loop rate 0.5, base 0.25 → increase 0.25 (positive = the adapter loops more); both rates are logged as
    `probe/loop_rate` and `probe/base_loop_rate`. If this fails, the loop-increase gate reads base − tuned and passes
    a run that made looping worse."""
    figures = probe_figures(
        {"mean_response_tokens": 4.0, "loop_rate": 0.5}, {"mean_response_tokens": 4.0, "loop_rate": 0.25}
    )
    assert figures["probe/loop_rate"] == 0.5 and figures["probe/base_loop_rate"] == 0.25
    assert figures["probe/loop_rate_increase"] == 0.25


def test_run_probes_reports_a_looping_answer_cut_at_the_cap(monkeypatch):
    """The adapter answers prompt 2 with "No, no, no, no, no, no" in 16 tokens = max_new_tokens: it loops and was cut
    at the cap. Tuned loop rate 1/2 = 0.5, base 0 → increase 0.5; tuned truncated_rate 0.5; the record says which
    answer loops. If this fails, a degenerating adapter passes its probes unseen."""
    monkeypatch.setattr(probes, "generate_answers", fake_generate)
    model = FakeModel()
    model.tuned = {PROMPTS[1]["prompt"]: ("No, no, no, no, no, no", 16)}
    figures, records = run_probes(model, None, PROMPTS[:2], 16, 2, BaseAnswers(), ("probes.jsonl", 2, 16))
    assert (figures["probe/loop_rate"], figures["probe/base_loop_rate"]) == (0.5, 0.0)
    assert figures["probe/loop_rate_increase"] == 0.5 and figures["probe/truncated_rate"] == 0.5
    assert [(r["tuned_loops"], r["tuned_truncated"], r["base_loops"]) for r in records] == [
        (False, False, False),
        (True, True, False),
    ]


def test_load_probe_prompts_keeps_the_first_ones(tmp_path):
    """Three prompts, limit 2 → the first two in file order; no limit → all three."""
    path = tmp_path / "probes.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in PROMPTS))
    assert [r["prompt"] for r in load_probe_prompts(path, 2)] == [PROMPTS[0]["prompt"], PROMPTS[1]["prompt"]]
    assert load_probe_prompts(path, None) == PROMPTS


def test_base_answers_are_made_once_per_key():
    """Two gets of one key call `make` once; another key calls it again. If this fails, every stage regenerates the
    base model's answers (slow), or stages with other prompts reuse the wrong ones."""
    made = []
    answers = BaseAnswers()
    assert answers.get(("a", 2, 16), lambda: made.append("a") or "A") == "A"
    assert answers.get(("a", 2, 16), lambda: made.append("again") or "B") == "A"
    assert answers.get(("a", 2, 32), lambda: made.append("b") or "C") == "C"
    assert made == ["a", "b"]


def test_run_probes_figures_and_records_by_hand(monkeypatch):
    """Two prompts; token counts tuned 4 and 3 (mean 3.5, median 3.5), base 12 and 8 (mean 10) → ratio 0.35.
    Key-point recall: base covers both points of prompt 1 ("run ls -a", "dotfiles") and "nine minutes" → 1.0;
    tuned "Run ls -a." misses "dotfiles" → (0.5 + 1.0)/2 = 0.75 → drop 0.25. Base filler: "Great question" is one
    phrase in 8 words = 12.5 per 100 words, 0 in the second → 6.25. The base answers come from the model with its
    adapter disabled, generated once for two calls with the same cache key.
    If this fails, probe figures compare the wrong answers, or base answers are regenerated or taken with the
    adapter on."""
    monkeypatch.setattr(probes, "generate_answers", fake_generate)
    model, rows, cache = FakeModel(), PROMPTS[:2], BaseAnswers()
    figures, records = run_probes(
        model, None, rows, max_new_tokens=16, batch_size=2, base_answers=cache, cache_key=("probes.jsonl", 2, 16)
    )
    assert figures["probe/mean_response_tokens"] == 3.5 and figures["probe/median_response_tokens"] == 3.5
    assert figures["probe/base_mean_response_tokens"] == 10.0
    assert figures["probe/mean_tokens_ratio"] == pytest.approx(0.35)
    assert figures["probe/key_point_recall"] == 0.75 and figures["probe/base_key_point_recall"] == 1.0
    assert figures["probe/key_point_recall_drop"] == 0.25
    assert figures["probe/base_filler_rate"] == 6.25 and figures["probe/filler_rate"] == 0.0
    assert figures["probe/empty_rate"] == 0.0
    assert records == [
        {
            "prompt": PROMPTS[0]["prompt"],
            "reference": "Run `ls -a`.",
            "base": BASE[PROMPTS[0]["prompt"]][0],
            "tuned": "Run ls -a.",
            "base_tokens": 12,
            "tuned_tokens": 4,
            "base_key_point_recall": 1.0,
            "tuned_key_point_recall": 0.5,
            **NO_LOOPS,
        },
        {
            "prompt": PROMPTS[1]["prompt"],
            "base": "Boil it for nine minutes.",
            "tuned": "Nine minutes.",
            "base_tokens": 8,
            "tuned_tokens": 3,
            "base_key_point_recall": 1.0,
            "tuned_key_point_recall": 1.0,
            **NO_LOOPS,
        },
    ]
    assert [(c["adapter_on"], c["max_new_tokens"], c["batch_size"]) for c in model.calls] == [
        (True, 16, 2),
        (False, 16, 2),
    ]
    assert model.adapter_on
    again, _ = run_probes(
        model, None, rows, max_new_tokens=16, batch_size=2, base_answers=cache, cache_key=("probes.jsonl", 2, 16)
    )
    assert [c["adapter_on"] for c in model.calls] == [True, False, True]  # the base answers were reused
    assert again == figures


def test_run_probes_with_an_identity_adapter_on_the_tiny_model(tiny_model_dir):
    """Real greedy generation: a fresh LoRA adapter (B = 0) changes nothing, so the tuned answers are the base
    answers token for token, the length ratio is exactly 1 and the recall drop exactly 0; each answer is at most
    max_new_tokens = 6 tokens. If this fails, probes answer with something other than the model they are given, or
    the base run does not restore the adapter."""
    from peft import LoraConfig, get_peft_model

    from align.models import load_model, load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    model = get_peft_model(
        load_model(str(tiny_model_dir), dtype="float32"),
        LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    figures, records = run_probes(
        model, tokenizer, PROMPTS[:2], max_new_tokens=6, batch_size=2, base_answers=BaseAnswers(), cache_key=("k", 2, 6)
    )
    assert [r["tuned"] for r in records] == [r["base"] for r in records]
    assert [r["tuned_tokens"] for r in records] == [r["base_tokens"] for r in records]
    assert all(0 < r["tuned_tokens"] <= 6 for r in records)
    assert figures["probe/mean_tokens_ratio"] == 1.0 and figures["probe/key_point_recall_drop"] == 0.0
    lora_layers = [m for m in model.modules() if hasattr(m, "lora_A")]
    assert lora_layers and not any(m.disable_adapters for m in lora_layers)  # the adapter is on again

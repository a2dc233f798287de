"""Held-out pair margins and accuracy (`align.evaluation.pairs`) against plain Hugging Face forward passes."""

import json
from pathlib import Path

import pytest
import torch

from align.data.rows import PreferenceRow
from align.evaluation.pairs import pair_accuracy, pair_margins
from align.models import load_model, load_tokenizer

REPO = Path(__file__).resolve().parents[2]


def _rows() -> list[PreferenceRow]:
    """Nine held-out pairs of three kinds, whose answers range from a few words to a few hundred tokens, so
    length-sorted batches of 4 hold rows of very different lengths than file order does."""
    lines = (REPO / "data" / "concise" / "heldout_pairs.jsonl").read_text().splitlines()
    picked = [json.loads(line) for line in lines[:60]]
    by_kind: dict[str, list[dict]] = {}
    for row in picked:
        by_kind.setdefault(row["kind"], []).append(row)
    chosen = [row for rows in by_kind.values() for row in rows[:3]]
    return [PreferenceRow(r["prompt"], r["chosen"], r["rejected"], meta={"kind": r["kind"]}) for r in chosen]


def _completion_logp(model, tokenizer, prompt: str, answer: str) -> float:
    """Σ log p(answer tokens | prompt) by one unpadded forward pass of the chat-formatted conversation."""
    user = [{"role": "user", "content": prompt}]
    prompt_ids = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=True, return_dict=True)
    full_ids = tokenizer.apply_chat_template(
        user + [{"role": "assistant", "content": answer}], tokenize=True, return_dict=True
    )
    start, ids = len(prompt_ids["input_ids"]), torch.tensor([full_ids["input_ids"]])
    logps = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
    targets = ids[0, 1:]
    return logps[start - 1 :].gather(-1, targets[start - 1 :, None]).sum().item()


@pytest.fixture(scope="module")
def lora_model(tiny_model_dir):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    config = LoraConfig(r=4, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    return get_peft_model(load_model(str(tiny_model_dir), dtype="float32"), config).eval()


def test_margins_equal_plain_forward_passes(lora_model, tiny_model_dir):
    """Each row's implicit-reward margin, from length-sorted padded batches of 4, equals
    (π_c − ref_c) − (π_r − ref_r) computed by plain unpadded forward passes (adapter on, then off) within 1e-3 nats,
    and the rows come back in file order. If this fails, held-out pair accuracy reads padding, mixes up rows when it
    sorts them, or scores tokens other than the answer's."""
    tokenizer = load_tokenizer(str(tiny_model_dir))
    rows = _rows()
    margins = pair_margins(lora_model, tokenizer, rows, batch_size=4)
    expected = []
    with torch.no_grad():
        for row in rows:
            policy = [_completion_logp(lora_model, tokenizer, row.prompt, a) for a in (row.chosen, row.rejected)]
            with lora_model.disable_adapter():
                ref = [_completion_logp(lora_model, tokenizer, row.prompt, a) for a in (row.chosen, row.rejected)]
            expected.append((policy[0] - ref[0]) - (policy[1] - ref[1]))
    got = [m.item() for m in margins]
    assert got == pytest.approx(expected, abs=1e-3)
    assert min(expected) < 0 < max(expected)  # wins and losses both: the comparison can tell rows apart
    result = pair_accuracy(lora_model, tokenizer, rows, batch_size=4)
    wins = [m > 0 for m in expected]
    assert result["pair_accuracy"] == pytest.approx(sum(wins) / len(wins))
    for kind in {r.meta["kind"] for r in rows}:
        kind_wins = [w for w, r in zip(wins, rows, strict=True) if r.meta["kind"] == kind]
        assert result["pair_accuracy_by_kind"][kind] == pytest.approx(sum(kind_wins) / len(kind_wins))

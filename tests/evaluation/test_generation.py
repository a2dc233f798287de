"""align's generation on the tiny model: greedy answers are `model.generate`'s token for token (with and without a
LoRA adapter, batched or one at a time), finished rows leave the batch without changing the others, the adapter's
base weights come back untouched, and sampling is repeatable by seed."""

import dataclasses

import pytest
import torch

from align.evaluation.decoding import decode, greedy
from align.evaluation.generation import (
    SamplingSettings,
    answer_from_ids,
    chat_inputs,
    generate_answers,
    rows_in_budget,
    sample_answers,
)
from align.evaluation.merged_adapter import adapter_folded
from align.models import load_model, load_tokenizer
from tests.policy_fixtures import redrawn_base, redrawn_lora

PROMPTS = [
    "How do I list files?",
    "Boil an egg?",
    "What is the fastest way to sort a list in Python, and why is it fast?",
    "Tea?",
    "Explain what a key-value cache does in a transformer decoder, in two sentences.",
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(str(tiny_model_dir))


def _hf_answers(model, tokenizer, prompts, max_new_tokens):
    """Reference: plain `model.generate`, one prompt at a time (no padding), cut at the first stop token."""
    answers = []
    for prompt in prompts:
        inputs = chat_inputs(tokenizer, [prompt])
        with torch.no_grad():
            out = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        answers.append(out[0, inputs["input_ids"].shape[1] :].tolist())
    return answers


@pytest.mark.parametrize("with_adapter", [False, True])
def test_greedy_answers_are_generates_token_for_token(tiny_model_dir, tokenizer, with_adapter):
    """Batched (3 at a time, prompts of different lengths, so left padding) and one at a time, align's answers equal
    plain `model.generate` run prompt by prompt. With the adapter this runs folded into the base weights. If this
    fails, probes and `align eval` score answers the model would not give."""
    model = redrawn_lora(tiny_model_dir) if with_adapter else redrawn_base(tiny_model_dir)
    stops = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    reference = [answer_from_ids(tokenizer, ids, stops) for ids in _hf_answers(model, tokenizer, PROMPTS, 12)]
    batched = generate_answers(model, tokenizer, PROMPTS, max_new_tokens=12, batch_size=3)
    single = [generate_answers(model, tokenizer, [p], max_new_tokens=12, batch_size=1)[0] for p in PROMPTS]
    budget = generate_answers(model, tokenizer, PROMPTS, max_new_tokens=12)  # default: all 5 in one batch
    assert batched == reference == single == budget
    assert len({a.text for a in batched}) == len(PROMPTS)  # distinct answers: the comparison has content


def test_finished_rows_leave_without_changing_the_others(tiny_model_dir, tokenizer):
    """A token that some rows emit early is made the stop token: those rows leave the batch mid-way, and every
    row's tokens equal `model.generate` with that eos (which keeps all rows running, padded) and equal the
    same batch decoded with no stop at all, cut after the stop. If this fails, a row leaving the batch (cache rows
    dropped) corrupts the rows that stay."""
    model = redrawn_base(tiny_model_dir)
    inputs = chat_inputs(tokenizer, PROMPTS)
    free = decode(model, inputs["input_ids"], inputs["attention_mask"], 16, set())
    stop = free[0][3]  # row 0 stops after 4 tokens; other rows stop when (if) they emit it
    stopped = decode(model, inputs["input_ids"], inputs["attention_mask"], 16, {stop})
    cut = [row[: row.index(stop) + 1] if stop in row else row for row in free]
    assert stopped == cut
    assert any(len(row) < 16 for row in stopped) and any(len(row) == 16 for row in stopped)  # some left, some ran
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=16, do_sample=False, eos_token_id=stop, pad_token_id=stop)
    hf = [row[: row.index(stop) + 1] if stop in row else row for row in out[:, inputs["input_ids"].shape[1] :].tolist()]
    assert stopped == hf


def test_adapter_weights_are_the_same_tensors_after_generation(tiny_model_dir, tokenizer):
    """Generation folds the adapter into the base weights, then puts back the original tensors: every parameter is
    bit-identical afterwards, the LoRA path runs again (output differs from adapters-off), and an error inside the
    folded block restores them too. If this fails, probes change the model that training continues with."""
    model = redrawn_lora(tiny_model_dir)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    x = chat_inputs(tokenizer, PROMPTS[:1])["input_ids"]
    with torch.no_grad():
        out_before = model(input_ids=x).logits
        with adapter_folded(model) as folded:
            assert folded
            out_folded = model(input_ids=x).logits
    torch.testing.assert_close(out_folded, out_before, rtol=1e-5, atol=1e-5)  # folding computes the same function
    generate_answers(model, tokenizer, PROMPTS, max_new_tokens=6, batch_size=2)
    with pytest.raises(RuntimeError), adapter_folded(model):
        raise RuntimeError("inside")
    assert all(torch.equal(before[name], p) for name, p in model.named_parameters())
    with torch.no_grad():
        assert torch.equal(model(input_ids=x).logits, out_before)
        with model.disable_adapter():
            assert not torch.equal(model(input_ids=x).logits, out_before)  # the adapter is live again, not folded


def test_disabled_adapter_is_not_folded(tiny_model_dir, tokenizer):
    """Under `disable_adapter()` (the probes' base answers) nothing is folded and the answers are the base model's.
    If this fails, the probes' base answers carry the adapter."""
    model = redrawn_lora(tiny_model_dir)
    base_answers = generate_answers(redrawn_base(tiny_model_dir), tokenizer, PROMPTS, max_new_tokens=8)
    with model.disable_adapter():
        with adapter_folded(model) as folded:
            assert not folded
        assert generate_answers(model, tokenizer, PROMPTS, max_new_tokens=8) == base_answers


def test_sampling_is_repeatable_by_seed(tiny_model_dir, tokenizer):
    """Same settings and seed → the same samples; another seed → different ones; each prompt gets `samples` answers
    within the cap. If this fails, on-policy stages cannot be reproduced (or the seed is ignored)."""
    model = redrawn_lora(tiny_model_dir)
    settings = SamplingSettings(samples=3, temperature=1.0, top_p=0.9, max_new_tokens=10, seed=5)
    first = sample_answers(model, tokenizer, PROMPTS, settings, batch_size=2)
    again = sample_answers(model, tokenizer, PROMPTS, settings, batch_size=2)
    other = sample_answers(model, tokenizer, PROMPTS, dataclasses.replace(settings, seed=6), batch_size=2)
    assert first == again != other
    assert [len(samples) for samples in first] == [3] * len(PROMPTS)
    assert all(0 <= a.tokens <= 10 for samples in first for a in samples)
    assert len({a.text for a in first[2]}) > 1  # the copies of one prompt sample independently


def test_greedy_answer_comes_first_and_leaves_the_samples_unchanged(tiny_model_dir, tokenizer):
    """With `greedy`, each prompt's first answer is plain `model.generate`'s greedy answer and the rest are the very
    samples drawn without it (greedy decoding draws no random numbers). If this fails, on-policy stages that reject
    the policy's greedy loops would reject an answer the model does not give, or change the sampled ones."""
    model = redrawn_lora(tiny_model_dir)
    settings = SamplingSettings(samples=2, temperature=1.0, top_p=0.9, max_new_tokens=10, seed=3)
    plain = sample_answers(model, tokenizer, PROMPTS, settings, batch_size=2)
    with_greedy = sample_answers(model, tokenizer, PROMPTS, dataclasses.replace(settings, greedy=True), batch_size=2)
    stops = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    reference = [answer_from_ids(tokenizer, ids, stops) for ids in _hf_answers(model, tokenizer, PROMPTS, 10)]
    assert [answers[0] for answers in with_greedy] == reference
    assert [answers[1:] for answers in with_greedy] == plain
    assert any(answers[0] not in answers[1:] for answers in with_greedy)  # greedy is not just another sample


def test_top_p_keeps_only_the_nucleus():
    """With top_p 0.5 and probabilities (0.6, 0.3, 0.1) only the first token can be drawn; with top_p 0.7 the first
    two. If this fails, nucleus sampling draws tokens outside the nucleus."""
    from align.evaluation.decoding import nucleus_sampler

    logits = torch.log(torch.tensor([[0.1, 0.6, 0.3]])).repeat(400, 1)
    generator = torch.Generator().manual_seed(0)
    assert set(nucleus_sampler(1.0, 0.5, generator)(logits).tolist()) == {1}
    assert set(nucleus_sampler(1.0, 0.7, generator)(logits).tolist()) == {1, 2}
    assert greedy(logits[:1]).tolist() == [1]


def test_nucleus_draws_follow_the_hand_worked_distribution():
    """Probabilities (0.5, 0.2, 0.15, 0.1, 0.05) at top_p 0.8 keep the first three (the mass ranked above the 0.1
    token is 0.85 >= 0.8), renormalised to 0.5/0.85, 0.2/0.85, 0.15/0.85; at temperature 0.5 without top_p each
    probability is squared and renormalised (0.769, 0.123, 0.069, 0.031, 0.008). 40,000 draws each must match within
    0.01; if they do not, the sampler draws from a distribution other than the one it documents."""
    from align.evaluation.decoding import nucleus_sampler

    probs = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05])
    logits = torch.log(probs).repeat(40_000, 1)
    generator = torch.Generator().manual_seed(0)
    cases = [((1.0, 0.8), torch.tensor([0.5, 0.2, 0.15, 0.0, 0.0]) / 0.85), ((0.5, 1.0), probs**2 / (probs**2).sum())]
    for (temperature, top_p), expected in cases:
        drawn = nucleus_sampler(temperature, top_p, generator)(logits)
        frequencies = torch.bincount(drawn, minlength=5).double() / len(drawn)
        assert torch.allclose(frequencies, expected.double(), atol=0.01), (temperature, top_p, frequencies)


def test_a_nucleus_wider_than_the_candidates_is_ranked_in_full():
    """1,000 tokens with probabilities falling linearly: the top 256 hold 0.44 of the mass, so a 0.9 nucleus needs
    the full ranking. Tokens past the nucleus must never be drawn and the nucleus's far end must be; if the shortcut
    over the first 256 candidates were used here, no token past the 256th would ever be drawn."""
    from align.evaluation.decoding import NUCLEUS_CANDIDATES, nucleus_sampler

    weights = torch.arange(1000, 0, -1, dtype=torch.float64)
    probs = weights / weights.sum()
    cut = int((probs.cumsum(0) - probs < 0.9).sum())  # tokens 0..cut-1 form the nucleus
    assert NUCLEUS_CANDIDATES < cut < 1000
    logits = torch.log(probs).float().repeat(20_000, 1)
    drawn = nucleus_sampler(1.0, 0.9, torch.Generator().manual_seed(0))(logits)
    assert int(drawn.max()) < cut and int(drawn.max()) > NUCLEUS_CANDIDATES


def test_rows_in_budget_by_hand(tiny_model_dir):
    """Tiny Llama (2 layers, 2 key/value heads of 16, hidden 64, feed-forward 256, fp32): a position holds
    2·2·2·16·4 = 512 bytes of cache and 4·(64 + 256)·4 = 5,120 of activations, 5,632 in all; 3 rows of 10 positions
    are 168,960 bytes. If this fails, the default batch outgrows (or wastes) its memory budget."""
    model = load_model(str(tiny_model_dir), dtype="float32")
    assert rows_in_budget(model, 10, budget=168_960) == 3
    assert rows_in_budget(model, 10, budget=168_959) == 2
    assert rows_in_budget(model, 10, budget=1) == 1  # always at least one row

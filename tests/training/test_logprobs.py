"""The completion-only chunked log-prob path equals the naive full-logits computation, values and gradients."""

import pytest
import torch

from align.models import load_model
from align.training.families import HeadScaling
from align.training.head import FrozenHeadLogps, chunked_target_logps
from align.training.logprobs import add_completion_logps


def _naive(model, input_ids, attention_mask, completion_mask):
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    token_logps = logits.log_softmax(-1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return (token_logps * completion_mask[:, 1:]).sum(1)


def test_chunked_completion_logps_match_full_logits(tiny_model_dir):
    """Chunk size 7 forces several chunks and a ragged last one; padding and prompt positions must be ignored.

    If this fails, every loss in align trains on wrong log-probs.
    """
    torch.manual_seed(0)
    model = load_model(str(tiny_model_dir), dtype="float32")
    reference = load_model(str(tiny_model_dir), dtype="float32")
    add_completion_logps(model, chunk_tokens=7)
    input_ids = torch.randint(5, model.config.vocab_size, (3, 12))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 9:] = 0
    completion_mask = torch.zeros_like(input_ids)
    completion_mask[0, 4:] = 1
    completion_mask[1, 6:9] = 1
    completion_mask[2, 2:11] = 1

    out = model(
        input_ids=input_ids, attention_mask=attention_mask, completion_mask=completion_mask, completion_logps=True
    )
    expected = _naive(reference, input_ids, attention_mask, completion_mask)
    assert torch.allclose(out.logps, expected, atol=1e-5)
    assert out.lengths.tolist() == [8, 3, 9]

    out.logps.sum().backward()
    expected.sum().backward()
    for (name, p), (_, q) in zip(model.named_parameters(), reference.named_parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name


def test_plain_forward_is_untouched(tiny_model_dir):
    """Generation and trl's own calls go through the original forward when the flag is not set."""
    model = load_model(str(tiny_model_dir), dtype="float32")
    ids = torch.randint(5, 100, (1, 6))
    before = model(input_ids=ids).logits
    add_completion_logps(model)
    assert torch.equal(model(input_ids=ids).logits, before)


def test_shared_prefix_sums_by_hand():
    """Pair 1: chosen has 3 completion tokens, rejected 2 → shared length 2: chosen prefix = −1 −2 = −3,
    rejected = its full −10 −20 = −30. Pair 2: chosen 1 token (−5), rejected 3 → shared 1: chosen −5, rejected −7.

    Rows are [chosen1, chosen2, rejected1, rejected2]; prompt positions (mask 0) carry junk that must be ignored.
    If this fails, lddpo weights the wrong tokens.
    """
    from align.training.logprobs import shared_prefix_logps

    per_token = torch.tensor(
        [
            [9.0, -1.0, -2.0, -4.0],
            [9.0, 9.0, -5.0, 0.0],
            [9.0, -10.0, -20.0, 0.0],
            [-7.0, -8.0, -9.0, 0.0],
        ]
    )
    mask = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 0], [0, 1, 1, 0], [1, 1, 1, 0]], dtype=torch.bool)
    chosen, rejected = shared_prefix_logps(per_token * mask, mask)
    assert chosen.tolist() == [-3.0, -5.0]
    assert rejected.tolist() == [-30.0, -7.0]


@pytest.mark.parametrize("softcap", [None, 3.0])
@pytest.mark.parametrize("bias", [False, True])
def test_frozen_head_logps_and_hidden_gradients_equal_autograd(softcap, bias):
    """`FrozenHeadLogps` (gradient computed in the forward pass) against plain autograd through the full logits:
    values and d/d hidden within 1e-5, with a soft cap (Gemma-style) and a head bias, ragged chunks of 4.

    If this fails, every LoRA run (frozen head) trains on wrong gradients.
    """
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 11, bias=bias).requires_grad_(False)
    hidden = torch.randn(10, 8, requires_grad=True)
    targets = torch.randint(0, 11, (10,))
    weights = torch.linspace(-1.0, 2.0, 10)

    fast = chunked_target_logps(hidden, targets, head, chunk=4, scaling=HeadScaling(softcap=softcap))
    (fast * weights).sum().backward()
    fast_grad, hidden.grad = hidden.grad.clone(), None

    logits = head(hidden)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    slow = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    (slow * weights).sum().backward()

    assert torch.allclose(fast, slow, atol=1e-5)
    assert torch.allclose(fast_grad, hidden.grad, atol=1e-5)


def test_frozen_head_path_is_taken_for_lora_and_matches(tiny_model_dir):
    """With the head frozen (as under LoRA) the fast path runs and the trainable parameters' gradients equal the
    full-logits computation. If this fails, LoRA stages silently fall back to the slow path or train wrongly."""
    torch.manual_seed(0)
    model = load_model(str(tiny_model_dir), dtype="float32")
    reference = load_model(str(tiny_model_dir), dtype="float32")
    for m in (model, reference):
        m.get_output_embeddings().requires_grad_(False)
    add_completion_logps(model, chunk_tokens=5)
    calls = []
    original = FrozenHeadLogps.forward
    FrozenHeadLogps.forward = staticmethod(lambda *a: calls.append(1) or original(*a))
    try:
        input_ids = torch.randint(5, model.config.vocab_size, (2, 10))
        attention_mask = torch.ones_like(input_ids)
        completion_mask = torch.zeros_like(input_ids)
        completion_mask[:, 4:] = 1
        out = model(
            input_ids=input_ids, attention_mask=attention_mask, completion_mask=completion_mask, completion_logps=True
        )
    finally:
        FrozenHeadLogps.forward = original
    assert calls, "the frozen-head path was not used"
    expected = _naive(reference, input_ids, attention_mask, completion_mask)
    assert torch.allclose(out.logps, expected, atol=1e-5)
    out.logps.sum().backward()
    expected.sum().backward()
    for (name, p), (_, q) in zip(model.named_parameters(), reference.named_parameters(), strict=True):
        if q.grad is not None:
            assert torch.allclose(p.grad, q.grad, atol=1e-5), name


@pytest.mark.parametrize("multiplier", [1.0, 0.25])
def test_frozen_head_gradient_with_logit_multiplier_equals_autograd(multiplier):
    """Cohere multiplies the logits by `logit_scale`, Granite divides them by `logits_scaling`: with a multiplier
    and a soft-cap, `FrozenHeadLogps` values and d/d hidden equal autograd through the scaled logits within 1e-5.
    If this fails, those families train on wrong gradients."""
    torch.manual_seed(1)
    head = torch.nn.Linear(8, 13, bias=False).requires_grad_(False)
    hidden = torch.randn(9, 8, requires_grad=True)
    targets = torch.randint(0, 13, (9,))
    scaling = HeadScaling(multiplier=multiplier, softcap=2.5)
    fast = chunked_target_logps(hidden, targets, head, chunk=4, scaling=scaling)
    fast.sum().backward()
    fast_grad, hidden.grad = hidden.grad.clone(), None
    logits = torch.tanh(head(hidden) * multiplier / 2.5) * 2.5
    slow = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    slow.sum().backward()
    assert torch.allclose(fast, slow, atol=1e-5)
    assert torch.allclose(fast_grad, hidden.grad, atol=1e-5)


def test_bf16_frozen_head_gradient_keeps_its_precision_near_certainty():
    """A target the head predicts with probability ≈ 0.99 in bf16: d log p / d h = Wᵀ(onehot − p) is small, and
    forming it as W_t − Σ p·W after rounding cancels (16% off here). The coefficient is formed in float32 before the
    one bf16 product, so the gradient stays within 3% of the float64 value (0.2% measured).
    If this fails, bf16 training gets noise for its most confident tokens."""
    torch.manual_seed(2)
    weight = torch.randn(64, 16)
    weight[5] = weight[5] * 0 + 2.0  # target row: a large logit for hidden states aligned with it
    hidden = torch.full((3, 16), 0.3)
    targets = torch.full((3,), 5)
    head = torch.nn.Linear(16, 64, bias=False).requires_grad_(False)
    head.weight.data = weight.to(torch.bfloat16)
    h = hidden.to(torch.bfloat16).requires_grad_(True)
    logps = chunked_target_logps(h, targets, head, chunk=8)
    assert logps.exp().min() > 0.99
    logps.sum().backward()
    exact_h = h.detach().double().requires_grad_(True)
    logits = exact_h @ head.weight.double().T
    logits.log_softmax(-1)[:, 5].sum().backward()
    error = (h.grad.double() - exact_h.grad).norm() / exact_h.grad.norm()
    assert error < 0.03, f"relative gradient error {error:.3f}"

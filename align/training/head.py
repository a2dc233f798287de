"""log p(target) through a causal LM's head for selected hidden states only, in chunks, scaled as the family scales.

The logits a family samples from are z = c·tanh(m·u / c) (no tanh without a soft-cap c), u = W·h + b the head's
output and m the family's multiplier (`align.training.families.HeadScaling`: Cohere's `logit_scale`, Granite's
1 / `logits_scaling`, Gemma 2's `final_logit_softcapping`).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from align.training.families import HeadScaling

# Rows of logits per chunk: on a GPU, 1024; on a CPU, as many as fit in 16 MiB of float32 logits, so the chunk's
# buffers stay under glibc's 32 MiB mmap ceiling and are reused from the heap (see `align.runtime.keep_freed_memory`).
GPU_CHUNK_TOKENS = 1024
CPU_CHUNK_BYTES = 16 * 2**20
UNSCALED = HeadScaling()


def default_chunk_tokens(vocabulary: int, device: torch.device) -> int:
    """Logit rows per chunk for a head of `vocabulary` outputs on `device`."""
    if device.type != "cpu":
        return GPU_CHUNK_TOKENS
    return max(16, CPU_CHUNK_BYTES // (4 * vocabulary))


def scale_logits(logits: torch.Tensor, scaling: HeadScaling) -> torch.Tensor:
    """The family's logits from the head's float32 output `logits` (any shape)."""
    if scaling.multiplier != 1.0:
        logits = logits * scaling.multiplier
    if scaling.softcap:
        logits = torch.tanh(logits / scaling.softcap) * scaling.softcap
    return logits


def _token_logps(hidden: torch.Tensor, targets: torch.Tensor, lm_head: torch.nn.Module, scaling: HeadScaling):
    """log p(target) for each row of `hidden` (N, H) → (N,), computed in float32."""
    logits = scale_logits(lm_head(hidden).float(), scaling)
    return logits.log_softmax(dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


@contextlib.contextmanager
def head_weights(lm_head: torch.nn.Module):
    """`(weight, bias)` of `lm_head` as whole, plain tensors while the context is open (bias may be None).

    The frozen-head path reads the weights without calling the module, so an engine's own gathering never runs:
    under DeepSpeed ZeRO-3 a partitioned parameter is an empty placeholder outside its module's forward (gathered
    here as trl's `maybe_gather_lm_head_ctx` does; already-available ones, e.g. tied to the embedding, are left
    alone), and under FSDP2 a separately sharded head holds DTensor shards (materialised with `full_tensor()`).
    Both are collectives: every process enters this context as many times as the others.
    """
    from torch.distributed.tensor import DTensor

    params = [lm_head.weight, getattr(lm_head, "bias", None)]
    partitioned = {id(p): p for p in params if p is not None and hasattr(p, "ds_id") and not _ds_available(p)}
    gather = contextlib.nullcontext()
    if partitioned:
        import deepspeed

        gather = deepspeed.zero.GatheredParameters(list(partitioned.values()), modifier_rank=None)
    with gather:
        yield tuple(p.full_tensor() if isinstance(p, DTensor) else p for p in params)


def _ds_available(param) -> bool:
    from deepspeed.runtime.zero.partition_parameters import ZeroParamStatus

    return param.ds_status == ZeroParamStatus.AVAILABLE


def chunked_target_logps(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    lm_head: torch.nn.Module,
    chunk: int,
    scaling: HeadScaling = UNSCALED,
    head: tuple | None = None,
) -> torch.Tensor:
    """log p(target) for each row of `hidden` (N, H) → (N,) float32, in chunks of `chunk` rows.

    A frozen plain linear head (LoRA, QLoRA: the head is not trained) takes `FrozenHeadLogps`, which needs neither a
    recomputation nor an N × vocabulary tensor in backward; a trained head (full fine-tuning, a LoRA on the head)
    checkpoints each chunk, recomputing its logits in backward. `head`: the head's whole `(weight, bias)` from
    `head_weights` (default: read from `lm_head`).
    """
    if hidden.size(0) == 0:
        return hidden.new_zeros(0, dtype=torch.float32)
    if type(lm_head) is torch.nn.Linear and not any(p.requires_grad for p in lm_head.parameters()):
        weight, bias = head or (lm_head.weight, lm_head.bias)
        return FrozenHeadLogps.apply(hidden, targets, weight, bias, scaling, chunk)
    pieces = []
    for start in range(0, hidden.size(0), chunk):
        h, t = hidden[start : start + chunk], targets[start : start + chunk]
        if torch.is_grad_enabled():
            pieces.append(checkpoint(_token_logps, h, t, lm_head, scaling, use_reentrant=False))
        else:
            pieces.append(_token_logps(h, t, lm_head, scaling))
    return torch.cat(pieces)


class FrozenHeadLogps(torch.autograd.Function):
    """log p(target) through a frozen linear head, with d log p / d hidden computed during the forward pass.

    With u = W·h + b, z = c·tanh(m·u / c) and log p(t) = z_t − logsumexp(z):
    d log p(t) / d h = Wᵀ·g with g = m·(onehot_t − softmax(z)) ⊙ dz/d(m·u) — everything it needs is at hand while the
    chunk's logits exist, so only that (N, H) gradient is kept, and backward scales it by the incoming (N,) gradient.
    Saves the logits recomputation and the (N, vocabulary) buffers of autograd's backward. The head gets no gradient
    (the caller checks it is frozen). Logits, softmax and g are float32; g is formed in float32 *before* the one
    product with W (in W's dtype), so a target probability near 1 does not cancel W_t against Σ p·W after rounding.
    """

    @staticmethod
    def forward(ctx, hidden, targets, weight, bias, scaling: HeadScaling, chunk):
        want_grad = ctx.needs_input_grad[0]
        logps, grads = [], []
        for start in range(0, hidden.size(0), chunk):
            h, t = hidden[start : start + chunk], targets[start : start + chunk]
            logits = F.linear(h, weight, bias).float()
            if scaling.multiplier != 1.0:
                logits.mul_(scaling.multiplier)
            slope = None
            if scaling.softcap:
                capped = torch.tanh(logits / scaling.softcap)
                slope = 1 - capped**2  # d z / d (m·u)
                logits = capped.mul_(scaling.softcap)
            # One pass of exp over the (chunk, vocabulary) logits, in place: shifted logits → exp → softmax.
            shifted = logits.sub_(logits.amax(dim=-1, keepdim=True))
            picked = shifted.gather(-1, t.unsqueeze(-1)).squeeze(-1)
            exp = shifted.exp_()
            total = exp.sum(dim=-1)
            logps.append(picked - total.log())
            if want_grad:
                grads.append(_hidden_gradient(exp.div_(total.unsqueeze(-1)), t, slope, scaling, weight, hidden.dtype))
        ctx.save_for_backward(torch.cat(grads) if want_grad else None)
        return torch.cat(logps)

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad * grad_output.unsqueeze(-1).to(grad.dtype), None, None, None, None, None


def _hidden_gradient(probs, targets, slope, scaling: HeadScaling, weight, dtype) -> torch.Tensor:
    """d log p(target) / d h (chunk, H) from the chunk's float32 softmax `probs` (overwritten)."""
    coefficient = probs.neg_()
    if slope is not None:
        coefficient.mul_(slope)
    onehot = torch.ones_like(targets, dtype=coefficient.dtype) if slope is None else slope.gather(-1, targets[:, None])
    coefficient.scatter_add_(-1, targets[:, None], onehot.view(-1, 1))
    if scaling.multiplier != 1.0:
        coefficient.mul_(scaling.multiplier)
    return (coefficient.to(weight.dtype) @ weight).to(dtype)

"""Completion log-probs without the batch × length × vocabulary logits tensor.

`add_completion_logps(model)` patches a causal LM so that `model(input_ids, attention_mask,
completion_mask=..., completion_logps=True)` runs the backbone, projects only the hidden states that predict a
completion token through the LM head, in chunks whose logits are recomputed in backward (never all kept), and
returns summed log-probs per sequence. trl's fused head scores *every* position on devices without Triton (CPUs),
prompt and padding included, and with extra outputs (entropy, top-1) we do not use: on SmolLM2-135M with 8×250
tokens that head cost 16 of 26 seconds of a policy step on this CPU.

The same call with `packed={...}` (a batch from `align.training.packing`) scores a packed, prefix-shared batch.
The patch wraps `forward`, so calls still pass through DDP/FSDP wrappers and PEFT adapters as usual.
"""

from __future__ import annotations

import functools
import types
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from align.training.segment_attention import PairSegments, packed_mask_placeholder

# Rows of logits per chunk: on a GPU, 1024; on a CPU, as many as fit in 16 MiB of float32 logits, so the chunk's
# buffers stay under glibc's 32 MiB mmap ceiling and are reused from the heap (see `align.runtime.keep_freed_memory`).
GPU_CHUNK_TOKENS = 1024
CPU_CHUNK_BYTES = 16 * 2**20


def default_chunk_tokens(vocabulary: int, device: torch.device) -> int:
    """Logit rows per chunk for a head of `vocabulary` outputs on `device`."""
    if device.type != "cpu":
        return GPU_CHUNK_TOKENS
    return max(16, CPU_CHUNK_BYTES // (4 * vocabulary))


@dataclass
class CompletionLogps:
    """logps: (B,) summed completion log-probs; lengths: (B,) completion token counts; per_token: (B, T−1)
    log-probs at completion positions (0 elsewhere); mask: (B, T−1) bool, which positions are completion tokens."""

    logps: torch.Tensor
    lengths: torch.Tensor
    per_token: torch.Tensor
    mask: torch.Tensor


def shared_prefix_logps(per_token: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probs of each pair's first min(len_c, len_r) completion tokens, for chosen and rejected.

    `per_token`/`mask` are (2B, T−1) with the B chosen rows first, then the B rejected rows (trl's batch layout).
    For the shorter response of a pair the result is its full sum. Returns two (B,) tensors.
    """
    position = mask.long().cumsum(dim=1)
    chosen_len, rejected_len = mask.sum(dim=1).chunk(2)
    shared = torch.minimum(chosen_len, rejected_len).repeat(2)
    in_prefix = mask & (position <= shared.unsqueeze(1))
    return (per_token * in_prefix).sum(dim=1).chunk(2)


def _token_logps(hidden: torch.Tensor, targets: torch.Tensor, lm_head: torch.nn.Module, softcap: float | None):
    """log p(target) for each row of `hidden` (N, H) → (N,), computed in float32."""
    logits = lm_head(hidden).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return logits.log_softmax(dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def chunked_target_logps(
    hidden: torch.Tensor, targets: torch.Tensor, lm_head: torch.nn.Module, chunk: int, softcap: float | None = None
) -> torch.Tensor:
    """log p(target) for each row of `hidden` (N, H) → (N,) float32, in chunks of `chunk` rows.

    A frozen plain linear head (LoRA, QLoRA: the head is not trained) takes `FrozenHeadLogps`, which needs neither a
    recomputation nor an N × vocabulary tensor in backward; a trained head (full fine-tuning, a LoRA on the head)
    checkpoints each chunk, recomputing its logits in backward.
    """
    if hidden.size(0) == 0:
        return hidden.new_zeros(0, dtype=torch.float32)
    if type(lm_head) is torch.nn.Linear and not any(p.requires_grad for p in lm_head.parameters()):
        return FrozenHeadLogps.apply(hidden, targets, lm_head.weight, lm_head.bias, softcap, chunk)
    pieces = []
    for start in range(0, hidden.size(0), chunk):
        h, t = hidden[start : start + chunk], targets[start : start + chunk]
        if torch.is_grad_enabled():
            pieces.append(checkpoint(_token_logps, h, t, lm_head, softcap, use_reentrant=False))
        else:
            pieces.append(_token_logps(h, t, lm_head, softcap))
    return torch.cat(pieces)


class FrozenHeadLogps(torch.autograd.Function):
    """log p(target) through a frozen linear head, with d log p / d hidden computed during the forward pass.

    For logits z = W·h + b (optionally soft-capped, z = c·tanh(u/c) with u = W·h + b), log p(t) = z_t − logsumexp(z)
    and d log p(t) / d h = Wᵀ·((onehot_t − softmax(z)) ⊙ dz/du): everything it needs is at hand while the chunk's
    logits exist, so only that (N, H) gradient is kept, and backward scales it by the incoming (N,) gradient. Saves
    the logits recomputation and the (N, vocabulary) softmax/scatter buffers of autograd's backward. Head weights get
    no gradient (the caller checks they are frozen). Logits and softmax in float32; the product with W in W's dtype.
    """

    @staticmethod
    def forward(ctx, hidden, targets, weight, bias, softcap, chunk):
        want_grad = ctx.needs_input_grad[0]
        logps, grads = [], []
        for start in range(0, hidden.size(0), chunk):
            h, t = hidden[start : start + chunk], targets[start : start + chunk]
            logits = F.linear(h, weight, bias).float()
            slope = None
            if softcap:
                capped = torch.tanh(logits / softcap)
                slope = 1 - capped**2  # d z / d u
                logits = capped.mul_(softcap)
            # One pass of exp over the (chunk, vocabulary) logits, in place: shifted logits → exp → softmax.
            shifted = logits.sub_(logits.amax(dim=-1, keepdim=True))
            picked = shifted.gather(-1, t.unsqueeze(-1)).squeeze(-1)
            exp = shifted.exp_()
            total = exp.sum(dim=-1)
            logps.append(picked - total.log())
            if want_grad:
                weights = exp.div_(total.unsqueeze(-1))
                onehot_scale = torch.ones_like(total)
                if slope is not None:
                    onehot_scale = slope.gather(-1, t.unsqueeze(-1)).squeeze(-1)
                    weights.mul_(slope)
                grad = weight[t].float() * onehot_scale.unsqueeze(-1) - (weights.to(weight.dtype) @ weight).float()
                grads.append(grad.to(hidden.dtype))
        ctx.save_for_backward(torch.cat(grads) if want_grad else None)
        return torch.cat(logps)

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad * grad_output.unsqueeze(-1).to(grad.dtype), None, None, None, None, None


def add_completion_logps(model, chunk_tokens: int | None = None) -> None:
    """Patch `model` (a `PreTrainedModel` causal LM, not the PEFT wrapper) with the `completion_logps=True` path;
    `chunk_tokens` logit rows at a time (default: `default_chunk_tokens`)."""
    if getattr(model, "_align_completion_logps", False):
        return
    previous_forward = model.forward
    text_config = model.config.get_text_config()
    softcap = getattr(text_config, "final_logit_softcapping", None)

    @functools.wraps(type(model).forward)
    def forward(self, *args, completion_logps: bool = False, completion_mask=None, packed=None, **kwargs):
        if not completion_logps:
            return previous_forward(*args, **kwargs)
        kwargs.pop("labels", None)
        kwargs["use_cache"] = False
        if packed is not None:
            return _packed_completion_logps(self, packed, softcap, chunk_tokens, **kwargs)
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        hidden = getattr(self, self.base_model_prefix)(*args, **kwargs).last_hidden_state
        # Position t predicts token t+1: the completion tokens are scored from the positions just before them.
        target_mask = completion_mask[:, 1:].bool()
        lm_head = self.get_output_embeddings()
        picked = hidden[:, :-1][target_mask].to(lm_head.weight.device)
        targets = input_ids[:, 1:][target_mask].to(lm_head.weight.device)
        chunk = chunk_tokens or default_chunk_tokens(lm_head.weight.size(0), lm_head.weight.device)
        token_logps = chunked_target_logps(picked, targets, lm_head, chunk, softcap)
        per_token = token_logps.new_zeros(target_mask.shape).masked_scatter(target_mask, token_logps)
        return CompletionLogps(per_token.sum(dim=1), target_mask.sum(dim=1), per_token, target_mask)

    model.forward = types.MethodType(forward, model)
    model._align_completion_logps = True


def _packed_completion_logps(model, packed: dict, softcap: float | None, chunk_tokens: int | None, **kwargs):
    """The completion log-probs of a packed batch (`align.training.packing`): one backbone pass over the packed
    row with per-segment attention, then the scored tokens' log-probs scattered back to their sequences."""
    input_ids = kwargs.pop("input_ids")
    kwargs.pop("attention_mask", None)
    segments = PairSegments.build(packed["segment_lengths"], packed["token_part"])
    backbone = getattr(model, model.base_model_prefix)
    hidden = backbone(
        input_ids=input_ids,
        attention_mask=packed_mask_placeholder(input_ids.device),
        pair_segments=segments,
        **kwargs,
    ).last_hidden_state[0]
    lm_head = model.get_output_embeddings()
    picked = hidden[packed["target_index"]].to(lm_head.weight.device)
    targets = packed["target_ids"].to(lm_head.weight.device)
    chunk = chunk_tokens or default_chunk_tokens(lm_head.weight.size(0), lm_head.weight.device)
    token_logps = chunked_target_logps(picked, targets, lm_head, chunk, softcap)
    sequences, rank = packed["target_sequence"].to(token_logps.device), packed["target_rank"].to(token_logps.device)
    width = int(rank.max()) + 1 if rank.numel() else 1
    shape = (packed["sequence_lengths"].numel(), width)
    per_token = token_logps.new_zeros(shape).index_put((sequences, rank), token_logps)
    mask = torch.zeros(shape, dtype=torch.bool, device=token_logps.device).index_put(
        (sequences, rank), torch.ones_like(rank, dtype=torch.bool)
    )
    return CompletionLogps(per_token.sum(dim=1), mask.sum(dim=1), per_token, mask)

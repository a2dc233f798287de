"""Completion log-probs without the batch × length × vocabulary logits tensor.

`add_completion_logps(model)` patches a causal LM so that `model(input_ids, attention_mask,
completion_mask=..., completion_logps=True)` runs the backbone, projects only the hidden states that predict a
completion token through the LM head, in chunks whose logits are recomputed in backward (never all kept), and
returns summed log-probs per sequence. trl's fused head scores *every* position on devices without Triton (CPUs),
prompt and padding included, and with extra outputs (entropy, top-1) we do not use: on SmolLM2-135M with 8×250
tokens that head cost 16 of 26 seconds of a policy step on this CPU.

The same call with `packed=PackedBatch(...)` (`align.training.packed_batch`) scores a packed, prefix-shared batch.
The patch wraps `forward`, so calls still pass through DDP/FSDP wrappers and PEFT adapters as usual.
"""

from __future__ import annotations

import functools
import types
from dataclasses import dataclass

import torch

from align.errors import AlignError
from align.training.families import HeadScaling, head_scaling, text_config
from align.training.head import chunked_target_logps, default_chunk_tokens, head_weights
from align.training.packed_batch import PackedBatch
from align.training.private_api import router_load_balancing_loss
from align.training.segment_attention import PairSegments, packed_mask_placeholder


@dataclass
class CompletionLogps:
    """logps: (B,) summed completion log-probs; lengths: (B,) completion token counts; per_token: (B, T−1)
    log-probs at completion positions (0 elsewhere); mask: (B, T−1) bool, which positions are completion tokens;
    aux_loss: the forward's MoE router load-balancing loss (scalar), when asked for."""

    logps: torch.Tensor
    lengths: torch.Tensor
    per_token: torch.Tensor
    mask: torch.Tensor
    aux_loss: torch.Tensor | None = None


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


def add_completion_logps(model, chunk_tokens: int | None = None) -> None:
    """Patch `model` (a `PreTrainedModel` causal LM, not the PEFT wrapper) with the `completion_logps=True` path;
    `chunk_tokens` logit rows at a time (default: `default_chunk_tokens`).

    Families on the allow-list (`align.training.families`) score completion tokens only, scaled as the family scales
    its logits; any other family runs its own forward and takes log-probs from the full logits (exact, slower).
    `router_aux_loss=True` also returns the MoE router load-balancing loss, computed as the model computes it.
    """
    if getattr(model, "_align_completion_logps", False):
        return
    previous_forward = model.forward
    scaling = head_scaling(model)

    @functools.wraps(type(model).forward)
    def forward(self, *args, completion_logps=False, completion_mask=None, packed=None, router_aux_loss=False, **kw):
        if not completion_logps:
            return previous_forward(*args, **kw)
        kw.pop("labels", None)
        kw["use_cache"] = False
        if args:
            kw["input_ids"] = args[0]
        if packed is not None:
            if scaling is None:
                raise AlignError(f"{type(self).__name__} cannot score packed batches; set `batch_layout: padded`")
            return _packed_completion_logps(self, packed, scaling, chunk_tokens, **kw)
        target_mask = completion_mask[:, 1:].bool()
        if scaling is None:
            return _full_logits_completion_logps(previous_forward, target_mask, router_aux_loss, **kw)
        return _padded_completion_logps(self, target_mask, scaling, chunk_tokens, router_aux_loss, **kw)

    model.forward = types.MethodType(forward, model)
    model._align_completion_logps = True


def _from_token_logps(token_logps: torch.Tensor, target_mask: torch.Tensor, aux_loss=None) -> CompletionLogps:
    per_token = token_logps.new_zeros(target_mask.shape).masked_scatter(target_mask, token_logps)
    return CompletionLogps(per_token.sum(dim=1), target_mask.sum(dim=1), per_token, target_mask, aux_loss)


def _padded_completion_logps(model, target_mask, scaling: HeadScaling, chunk_tokens, router_aux_loss, **kwargs):
    """Backbone, then the head over the hidden states that predict completion tokens only."""
    input_ids = kwargs["input_ids"]
    if router_aux_loss:
        kwargs["output_router_logits"] = True
    outputs = getattr(model, model.base_model_prefix)(**kwargs)
    # Position t predicts token t+1: the completion tokens are scored from the positions just before them.
    hidden = outputs.last_hidden_state[:, :-1][target_mask]
    token_logps = _head_logps(model, hidden, input_ids[:, 1:][target_mask], scaling, chunk_tokens)
    aux = None
    if router_aux_loss:
        aux = router_load_balancing_loss(model, outputs.router_logits, kwargs.get("attention_mask"))
    return _from_token_logps(token_logps, target_mask, aux)


def _head_logps(model, hidden, targets, scaling: HeadScaling, chunk_tokens: int | None) -> torch.Tensor:
    """log p(target) (N,) of the selected hidden states (N, H) through the model's head, whole under any engine."""
    lm_head = model.get_output_embeddings()
    with head_weights(lm_head) as head:
        device = head[0].device
        chunk = chunk_tokens or default_chunk_tokens(head[0].size(0), device)
        return chunked_target_logps(hidden.to(device), targets.to(device), lm_head, chunk, scaling, head)


def _full_logits_completion_logps(forward, target_mask, router_aux_loss, **kwargs) -> CompletionLogps:
    """The plain path: the model's own forward and full logits (families align has not proven its head path for)."""
    if router_aux_loss:
        kwargs["output_router_logits"] = True
    outputs = forward(**kwargs)
    logps = outputs.logits[:, :-1].float().log_softmax(dim=-1)
    token_logps = logps.gather(-1, kwargs["input_ids"][:, 1:].unsqueeze(-1)).squeeze(-1)[target_mask]
    return _from_token_logps(token_logps, target_mask, outputs.aux_loss if router_aux_loss else None)


def _packed_completion_logps(model, packed: PackedBatch, scaling: HeadScaling, chunk_tokens: int | None, **kwargs):
    """The completion log-probs of a packed batch (`align.training.packing`): one backbone pass over the packed
    row with per-segment attention, then the scored tokens' log-probs scattered back to their sequences."""
    input_ids = kwargs.pop("input_ids")
    kwargs.pop("attention_mask", None)
    segments = PairSegments.build(packed.segment_lengths, packed.token_part)
    backbone = getattr(model, model.base_model_prefix)
    hidden = backbone(
        input_ids=input_ids,
        attention_mask=packed_mask_placeholder(input_ids.device),
        pair_segments=segments,
        **kwargs,
    ).last_hidden_state[0]
    _check_every_layer_packed(model, segments)
    token_logps = _head_logps(model, hidden[packed.target_index], packed.target_ids, scaling, chunk_tokens)
    sequences, rank = packed.target_sequence.to(token_logps.device), packed.target_rank.to(token_logps.device)
    width = int(rank.max()) + 1 if rank.numel() else 1
    shape = (packed.sequence_lengths.numel(), width)
    per_token = token_logps.new_zeros(shape).index_put((sequences, rank), token_logps)
    mask = torch.zeros(shape, dtype=torch.bool, device=token_logps.device).index_put(
        (sequences, rank), torch.ones_like(rank, dtype=torch.bool)
    )
    return CompletionLogps(per_token.sum(dim=1), mask.sum(dim=1), per_token, mask)


def _check_every_layer_packed(model, segments: PairSegments) -> None:
    """Stop unless every decoder layer's attention ran through the segment backend: a layer that did not (it dropped
    the `pair_segments` argument, or mixes tokens some other way) would have attended across the packed row."""
    layers = text_config(model).num_hidden_layers
    if segments.layers_run != layers:
        raise AlignError(
            f"packed forward of {type(model).__name__}: {segments.layers_run} of {layers} attention layers ran "
            "through align's segment attention, so answers would see each other; set `batch_layout: padded`"
        )

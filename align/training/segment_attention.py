"""Attention for packed, prefix-shared batches (`align.training.packing`), as a transformers attention backend.

`use_segment_attention(model)` registers, for the model's own attention implementation X (sdpa, eager,
flash_attention_2...), an implementation `align-segments:X` and switches the model to it. A forward that passes
`pair_segments=PairSegments(...)` runs attention once per row segment with that segment's mask (a token sees the
shared part and the earlier tokens of its own answer); any other forward (generation, trl's padded batches) is
handed to X unchanged, with X's own mask. This needs a model whose attention goes through transformers'
`AttentionInterface` (`_supports_attention_backend`: Llama, Qwen2/3, Mistral, Gemma, Phi-3, SmolLM...).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

PREFIX = "align-segments:"


@dataclass
class PairSegments:
    """Row segments of a packed batch: `spans[i]` = (start, end) in the packed row, `masks[i]` (L, L) bool, True
    where query token q (row) may attend to key token k (column)."""

    spans: list[tuple[int, int]]
    masks: list[torch.Tensor]

    @classmethod
    def build(cls, segment_lengths: torch.Tensor, token_part: torch.Tensor) -> PairSegments:
        """Masks from `pack_rows`'s `segment_lengths` (B,) and `token_part` (N,): key k ≤ query q, and k in the shared
        part (0) or in q's own part."""
        ends = segment_lengths.cumsum(0).tolist()  # one host copy per forward, not per layer
        spans, masks = [], []
        for start, end in zip([0] + ends[:-1], ends, strict=True):
            part = token_part[start:end]
            order = torch.arange(end - start, device=token_part.device)
            causal = order.unsqueeze(0) <= order.unsqueeze(1)
            visible = (part.unsqueeze(0) == 0) | (part.unsqueeze(0) == part.unsqueeze(1))
            spans.append((start, end))
            masks.append(causal & visible)
        return cls(spans, masks)


def segment_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    segments: PairSegments,
    scaling: float | None,
    dropout: float,
) -> torch.Tensor:
    """Attention per segment: query (1, H, N, D), key/value (1, H_kv, N, D) → (1, N, H, D)."""
    grouped = query.size(1) != key.size(1)
    pieces = []
    for (start, end), mask in zip(segments.spans, segments.masks, strict=True):
        pieces.append(
            F.scaled_dot_product_attention(
                query[:, :, start:end],
                key[:, :, start:end],
                value[:, :, start:end],
                attn_mask=mask,
                dropout_p=dropout,
                scale=scaling,
                enable_gqa=grouped,
            )
        )
    return torch.cat(pieces, dim=2).transpose(1, 2).contiguous()


def _segment_backend(fallback_name: str):
    def forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0, pair_segments=None, **kwargs):
        if pair_segments is None:
            fallback = ALL_ATTENTION_FUNCTIONS[fallback_name] if fallback_name != "eager" else _eager(module)
            return fallback(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
        return segment_attention(query, key, value, pair_segments, scaling, dropout), None

    return forward


def _eager(module):
    """The model's own eager attention (eager is not in the registry: each architecture defines its own)."""
    import sys

    return sys.modules[type(module).__module__].eager_attention_forward


def supports_segment_attention(model) -> bool:
    """Whether `model` dispatches attention through transformers' `AttentionInterface`."""
    return bool(getattr(model, "_supports_attention_backend", False))


def use_segment_attention(model) -> None:
    """Switch `model` (a `PreTrainedModel`) to `align-segments:<its implementation>`; idempotent."""
    current = model.config._attn_implementation or "eager"
    if current.startswith(PREFIX):
        return
    if not supports_segment_attention(model):
        raise ValueError(
            f"{type(model).__name__} does not route attention through transformers' AttentionInterface, so it cannot "
            "run packed batches; set `batch_layout: padded` for this stage"
        )
    name = PREFIX + current
    if name not in ALL_ATTENTION_FUNCTIONS:
        ALL_ATTENTION_FUNCTIONS.register(name, _segment_backend(current))
        ALL_MASK_ATTENTION_FUNCTIONS.register(name, ALL_MASK_ATTENTION_FUNCTIONS[current])
    model.config._attn_implementation = name


def packed_mask_placeholder(device) -> torch.Tensor:
    """A 4-D tensor transformers' mask builders return unchanged: a packed forward builds its own per-segment masks,
    and letting transformers build an N × N mask for the whole packed row would cost N² memory for nothing."""
    return torch.ones(1, 1, 1, 1, dtype=torch.bool, device=device)

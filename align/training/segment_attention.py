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
class AttentionCall:
    """One attention call of a packed forward: queries `query` (start, end) of the packed row attend to the keys at
    `keys` (spans, concatenated) — causally (`mask` None), or under `mask` (queries × keys, bool, True = visible)."""

    query: tuple[int, int]
    keys: list[tuple[int, int]]
    mask: torch.Tensor | None = None


@dataclass
class PairSegments:
    """A packed batch's attention calls, in packed order. Per row: one causal call over the shared part and the first
    answer, then one call per further answer whose keys are the shared part and the answer itself (mask: the whole
    shared part, causal within the answer). No call computes scores between two answers, and the causal calls let
    the kernel skip the upper triangle."""

    calls: list[AttentionCall]

    @classmethod
    def build(cls, segment_lengths: torch.Tensor, token_part: torch.Tensor) -> PairSegments:
        """From `pack_rows`'s `segment_lengths` (B,) and `token_part` (N,) (0 shared, j+1 answer j)."""
        parts = token_part.tolist()  # one host copy per forward, not per layer
        calls, start = [], 0
        for length in segment_lengths.tolist():
            row = parts[start : start + length]
            shared = (start, start + row.count(0))
            answers, position = [], shared[1]
            for answer in range(1, max(row) + 1):
                answers.append((position, position + row.count(answer)))
                position = answers[-1][1]
            first_end = answers[0][1] if answers else shared[1]
            calls.append(AttentionCall((start, first_end), [(start, first_end)]))
            for first, last in (span for span in answers[1:] if span[1] > span[0]):
                size, visible = last - first, shared[1] - shared[0]
                mask = torch.ones(size, visible + size, dtype=torch.bool, device=token_part.device)
                mask[:, visible:] = mask[:, visible:].tril()
                calls.append(AttentionCall((first, last), [shared, (first, last)], mask))
            start += length
        return cls(calls)


def segment_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    segments: PairSegments,
    scaling: float | None,
    dropout: float,
) -> torch.Tensor:
    """Attention per call: query (1, H, N, D), key/value (1, H_kv, N, D) → (1, N, H, D)."""
    options = dict(dropout_p=dropout, scale=scaling, enable_gqa=query.size(1) != key.size(1))
    pieces = []
    for call in segments.calls:

        def gather(tensor, spans=call.keys):
            chunks = [tensor[:, :, first:last] for first, last in spans]
            return chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=2)

        pieces.append(
            F.scaled_dot_product_attention(
                query[:, :, call.query[0] : call.query[1]],
                gather(key),
                gather(value),
                attn_mask=call.mask,
                is_causal=call.mask is None,
                **options,
            )  # fmt: skip
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

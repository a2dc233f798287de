"""Attention for packed, prefix-shared batches (`align.training.packing`), as a transformers attention backend.

`use_segment_attention(model)` registers, for the model's own attention implementation X (sdpa, eager,
flash_attention_2...), an implementation `align-segments:X` and switches the model to it. A forward that passes
`pair_segments=PairSegments(...)` runs attention once per row segment with that segment's mask (a token sees the
shared part and the earlier tokens of its own answer); any other forward (generation, trl's padded batches) is
handed to X unchanged, with X's own mask. This needs a model whose attention goes through transformers'
`AttentionInterface` (`_supports_attention_backend`: Llama, Qwen2/3, Mistral, Gemma, Phi-3, SmolLM...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from align.errors import AlignError
from align.training.private_api import (
    ALL_ATTENTION_FUNCTIONS,
    ALL_MASK_ATTENTION_FUNCTIONS,
    architecture_function,
    attention_implementation,
    set_attention_implementation,
    supports_attention_backend,
)

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
    layers_run: int = 0  # attention layers that ran this layout (the packed forward checks it covered every layer)
    # Masks under a sliding window (or explicit attention), built at the first layer that asks and reused by the
    # others: (call index, window) → mask.
    dense_masks: dict = field(default_factory=dict)

    def mask(self, index: int, window: int | None, dense: bool, device) -> torch.Tensor | None:
        """Call `index`'s mask: its own (None: causal) unless a window applies or `dense` asks for a tensor."""
        call = self.calls[index]
        if window is None and not (dense and call.mask is None):
            return call.mask
        if (index, window) not in self.dense_masks:
            keys = sum(last - first for first, last in call.keys)
            self.dense_masks[index, window] = window_mask(call.query[1] - call.query[0], keys, window, device)
        return self.dense_masks[index, window]

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
    *,
    sliding_window: int | None = None,
    softcap: float | None = None,
    sinks: torch.Tensor | None = None,
) -> torch.Tensor:
    """Attention per call: query (1, H, N, D), key/value (1, H_kv, N, D) → (1, N, H, D).

    `sliding_window` W: a query at position p sees keys at positions p−W+1..p (transformers' rule); a call's keys sit
    at positions 0..n_keys−1 and its queries are the last n_queries of them, so masks follow from the sizes alone.
    `softcap` (Gemma 2: scores → c·tanh(scores/c)) and `sinks` (gpt-oss: one extra logit per head in the softmax
    denominator) take the explicit path, as the models' own eager attention computes them.
    """
    explicit = softcap is not None or sinks is not None
    pieces = []
    for index, call in enumerate(segments.calls):
        q = query[:, :, call.query[0] : call.query[1]]
        k, v = _gather(key, call.keys), _gather(value, call.keys)
        mask = segments.mask(index, sliding_window, explicit, q.device)
        if explicit:
            pieces.append(_explicit_attention(q, k, v, mask, scaling, dropout, softcap, sinks))
            continue
        if mask is not None and q.device.type == "cuda" and q.size(1) != k.size(1):
            # SDPA with enable_gqa and an explicit mask falls back to the math kernel on CUDA: repeat the KV heads.
            k, v = (t.repeat_interleave(q.size(1) // t.size(1), dim=1) for t in (k, v))
        pieces.append(
            F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=mask,
                is_causal=mask is None,
                dropout_p=dropout,
                scale=scaling,
                enable_gqa=q.size(1) != k.size(1),
            )
        )
    segments.layers_run += 1
    return torch.cat(pieces, dim=2).transpose(1, 2).contiguous()


def _gather(tensor: torch.Tensor, spans: list[tuple[int, int]]) -> torch.Tensor:
    chunks = [tensor[:, :, first:last] for first, last in spans]
    return chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=2)


def window_mask(queries: int, keys: int, window: int | None, device) -> torch.Tensor:
    """(queries, keys) bool, True = visible: the queries are the last `queries` of `keys` consecutive positions;
    causal, and within `window` positions (query − key < window) when a window is given."""
    query_position = torch.arange(keys - queries, keys, device=device).unsqueeze(1)
    distance = query_position - torch.arange(keys, device=device).unsqueeze(0)
    visible = distance >= 0
    return visible & (distance < window) if window is not None else visible


def _explicit_attention(q, k, v, mask, scaling, dropout, softcap, sinks) -> torch.Tensor:
    """Attention written out, as transformers' eager implementations of Gemma 2 and gpt-oss compute it."""
    if q.size(1) != k.size(1):
        k, v = (t.repeat_interleave(q.size(1) // t.size(1), dim=1) for t in (k, v))
    scale = scaling if scaling is not None else q.size(-1) ** -0.5
    scores = torch.matmul(q, k.transpose(2, 3)) * scale
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    if sinks is not None:
        sink = sinks.reshape(1, -1, 1, 1).expand(scores.size(0), -1, scores.size(2), 1).to(scores.dtype)
        scores = torch.cat([scores, sink], dim=-1)
        scores = scores - scores.amax(dim=-1, keepdim=True)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    if sinks is not None:
        probs = probs[..., :-1]
    if dropout:
        probs = F.dropout(probs, p=dropout)
    return torch.matmul(probs.to(v.dtype), v)


def _segment_backend(fallback_name: str):
    def forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0, pair_segments=None, **kwargs):
        if pair_segments is None:
            if getattr(attention_mask, "_align_packed_placeholder", False):
                raise AlignError(
                    f"{type(module).__name__} did not pass align's segment layout to its attention, so a packed batch "
                    "would attend across answers; set `batch_layout: padded`"
                )
            fallback = ALL_ATTENTION_FUNCTIONS[fallback_name] if fallback_name != "eager" else _eager(module)
            return fallback(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
        output = segment_attention(
            query,
            key,
            value,
            pair_segments,
            scaling,
            dropout,
            sliding_window=kwargs.get("sliding_window"),
            softcap=kwargs.get("softcap"),
            sinks=kwargs.get("s_aux"),
        )
        return output, None

    return forward


def _eager(module):
    """The model's own eager attention (eager is not in the registry: each architecture defines its own)."""
    return architecture_function(module, "eager_attention_forward")


def use_segment_attention(model) -> None:
    """Switch `model` (a `PreTrainedModel`) to `align-segments:<its implementation>`; idempotent."""
    current = attention_implementation(model)
    if current.startswith(PREFIX):
        return
    if not supports_attention_backend(model):
        raise ValueError(
            f"{type(model).__name__} does not route attention through transformers' AttentionInterface, so it cannot "
            "run packed batches; set `batch_layout: padded` for this stage"
        )
    name = PREFIX + current
    if name not in ALL_ATTENTION_FUNCTIONS:
        ALL_ATTENTION_FUNCTIONS.register(name, _segment_backend(current))
        ALL_MASK_ATTENTION_FUNCTIONS.register(name, ALL_MASK_ATTENTION_FUNCTIONS[current])
    set_attention_implementation(model, name)


def packed_mask_placeholder(device) -> torch.Tensor:
    """A 4-D tensor transformers' mask builders return unchanged: a packed forward builds its own per-segment masks,
    and letting transformers build an N × N mask for the whole packed row would cost N² memory for nothing."""
    placeholder = torch.ones(1, 1, 1, 1, dtype=torch.bool, device=device)
    # Marked, so a layer that got the placeholder but not the segment layout is caught instead of attending with it.
    placeholder._align_packed_placeholder = True
    return placeholder

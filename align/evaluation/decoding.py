"""The decode loop behind align's generation: one prefill of a left-padded batch, then one token per step from a
key/value cache, each row leaving the batch (and the cache) as soon as it emits a stop token.

It feeds the model what `transformers`' `generate` feeds it — the same attention mask, position ids (count of real
tokens before each position, 0 on padding) and last-position logits in float32 — so greedy decoding picks the same
tokens as `model.generate(do_sample=False)`; it skips `generate`'s per-step machinery (logits processors, stopping
criteria, padding finished rows) and runs finished rows no further.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# Picks each live row's next token from its float32 logits (rows × vocabulary) → token ids (rows).
Chooser = Callable[[torch.Tensor], torch.Tensor]


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """The most likely token of each row (the first on ties, as `torch.argmax` and `generate` pick)."""
    return logits.argmax(dim=-1)


# Tokens `nucleus_sampler` ranks first; a row whose nucleus is wider is ranked in full (sorting a whole vocabulary
# per row cost more than the model's decode step at 48 rows on a 2-core CPU).
NUCLEUS_CANDIDATES = 256


def nucleus_sampler(temperature: float, top_p: float, generator: torch.Generator) -> Chooser:
    """A chooser sampling from softmax(logits / `temperature`) restricted to the smallest set of tokens whose
    probability reaches `top_p` (1.0 = all tokens), drawing from `generator`: one uniform number per row, mapped
    through the kept tokens' cumulative probabilities (inverse-CDF sampling, float64 sums)."""

    def choose(logits: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits / temperature, dim=-1)
        if top_p >= 1.0:
            return _inverse_cdf(probs, generator)
        ranked, order = probs.topk(min(NUCLEUS_CANDIDATES, probs.shape[-1]), dim=-1)
        if bool((ranked.sum(dim=-1) < top_p).any()):  # a nucleus beyond the candidates: rank the whole vocabulary
            ranked, order = probs.sort(dim=-1, descending=True)
        # A token stays when the probability of the tokens ranked above it is still short of top_p: the most likely
        # token always stays.
        kept = ranked.masked_fill(ranked.cumsum(dim=-1) - ranked >= top_p, 0.0)
        return order.gather(-1, _inverse_cdf(kept, generator)[:, None]).squeeze(-1)

    return choose


def _inverse_cdf(weights: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One index per row, drawn with probability proportional to `weights` (rows × n, non-negative)."""
    cumulative = weights.to(torch.float64).cumsum(dim=-1)
    target = torch.rand(weights.shape[0], 1, generator=generator, device=weights.device, dtype=torch.float64)
    drawn = torch.searchsorted(cumulative, target * cumulative[:, -1:], right=True).squeeze(-1)
    return drawn.clamp_(max=weights.shape[-1] - 1)


def _new_cache(model):
    from transformers import DynamicCache

    return DynamicCache(config=model.config)


def _choose(logits: torch.Tensor, choose: Chooser, greedy_rows: torch.Tensor | None) -> torch.Tensor:
    """Each live row's next token: `choose`'s, or the argmax on the rows `greedy_rows` marks."""
    if greedy_rows is None:
        return choose(logits)
    chosen = greedy(logits)
    sampled = (~greedy_rows).nonzero().squeeze(-1)
    if sampled.numel():
        chosen[sampled] = choose(logits[sampled])
    return chosen


@torch.no_grad()
def decode(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    stop_ids: set[int],
    choose: Chooser = greedy,
    copies: int = 1,
    greedy_first: bool = False,
) -> list[list[int]]:
    """The new tokens of each row of a left-padded batch: up to and including the first stop token, or
    `max_new_tokens` tokens when there is none. With `copies` > 1 each prompt is run once and its cache copied, and
    the result holds `copies` consecutive answers per row (row 0's first, then row 0's second, ...).
    `greedy_first`: the first copy of each row is decoded greedily and only the others by `choose` (which then never
    sees the greedy rows), so one pass gives a prompt's greedy answer and its samples.

    A row that emits a stop token leaves the batch: its cache rows, mask and positions are dropped, so later steps
    run only the live rows (on a CPU each step's cost grows with the rows it runs).
    """
    positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    tokens: list[list[int]] = [[] for _ in range(input_ids.shape[0] * copies)]
    if max_new_tokens <= 0 or not tokens:
        return tokens
    cache = _new_cache(model)
    logits = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=positions,
        cache=cache,
        use_cache=True,
        logits_to_keep=1,
    ).logits[:, -1, :]
    next_positions = positions[:, -1:] + 1
    if copies > 1:
        cache.batch_repeat_interleave(copies)
        logits, attention_mask, next_positions = (
            t.repeat_interleave(copies, dim=0) for t in (logits, attention_mask, next_positions)
        )
    stops = torch.tensor(sorted(stop_ids), dtype=input_ids.dtype, device=input_ids.device)
    rows = list(range(len(tokens)))
    greedy_rows = torch.arange(len(tokens), device=input_ids.device) % copies == 0 if greedy_first else None
    for step in range(max_new_tokens):
        chosen = _choose(logits.to(dtype=torch.float32), choose, greedy_rows)
        for row, token in zip(rows, chosen.tolist(), strict=True):
            tokens[row].append(token)
        finished = torch.isin(chosen, stops)
        if step == max_new_tokens - 1 or bool(finished.all()):
            break
        if bool(finished.any()):
            keep = (~finished).nonzero().squeeze(-1)
            cache.batch_select_indices(keep)
            rows = [rows[k] for k in keep.tolist()]
            chosen, attention_mask, next_positions = chosen[keep], attention_mask[keep], next_positions[keep]
            greedy_rows = greedy_rows[keep] if greedy_rows is not None else None
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(attention_mask.shape[0], 1)], dim=-1)
        logits = model(
            input_ids=chosen[:, None],
            attention_mask=attention_mask,
            position_ids=next_positions,
            cache=cache,
            use_cache=True,
        ).logits[:, -1, :]
        next_positions = next_positions + 1
    return tokens

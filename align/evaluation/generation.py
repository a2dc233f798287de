"""Batched generation with the model's chat template: greedy answers (probes, `align eval`) and sampled ones
(on-policy stages), through align's decode loop (`decoding.py`) with any LoRA adapter folded into the base weights
for the duration (`merged_adapter.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from align.evaluation.decoding import decode, nucleus_sampler
from align.evaluation.merged_adapter import adapter_folded


@dataclass(frozen=True)
class GeneratedAnswer:
    """One greedy answer: its text, its length in tokens (without the end-of-turn token), and `truncated`: whether it
    ran to `max_new_tokens` without an end-of-turn token, i.e. was cut at the length cap."""

    text: str
    tokens: int
    truncated: bool


@dataclass(frozen=True)
class SamplingSettings:
    """How on-policy answers are sampled: `samples` answers per prompt at `temperature` with nucleus `top_p`
    (1.0 = off), each at most `max_new_tokens` tokens; `seed` makes a call repeatable. `greedy`: each prompt's
    greedy answer (what probes and `align eval` see) comes first, before its samples."""

    samples: int = 4
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 160
    seed: int = 0
    greedy: bool = False


def chat_texts(tokenizer, prompts: list[str]) -> list[str]:
    """Each prompt as a user turn followed by the assistant generation prompt (the prompt itself without a template)."""
    return [
        tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
        if tokenizer.chat_template
        else p
        for p in prompts
    ]


def chat_inputs(tokenizer, prompts: list[str]) -> dict[str, torch.Tensor]:
    """Left-padded token ids and attention mask of each prompt's chat text (what `model.generate` is given)."""
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        return tokenizer(chat_texts(tokenizer, prompts), return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = previous_side


@dataclass(frozen=True)
class _Batch:
    """Prompts answered together: their indices in the caller's list, left-padded ids and attention mask."""

    index: list[int]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor


# The memory one batch's rows may hold when the caller leaves the batch size to align (`batch_size=None`), bytes.
GENERATION_MEMORY_BUDGET = 2 * 2**30


def rows_in_budget(model, positions: int, budget: int = GENERATION_MEMORY_BUDGET) -> int:
    """How many rows of `positions` tokens (longest prompt + new tokens) fit `budget` bytes: each position holds its
    key/value cache in every layer plus, during the prompt pass, its hidden and feed-forward activations."""
    config = model.config.get_text_config(decoder=True)
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    width = next(model.parameters()).element_size()
    cache = 2 * config.num_hidden_layers * kv_heads * head_dim * width
    activations = 4 * (config.hidden_size + getattr(config, "intermediate_size", 4 * config.hidden_size)) * width
    return max(1, budget // (positions * (cache + activations)))


def _length_batches(
    model, tokenizer, prompts: list[str], batch_size: int | None, new_tokens: int, copies: int = 1
) -> Iterator[_Batch]:
    """Batches of `batch_size` prompts, shortest chat text (in tokens) first, so a batch holds little padding.
    `batch_size` None: as many prompts as `rows_in_budget` allows, each prompt taking `copies` rows of its longest
    prompt's tokens plus `new_tokens`."""
    ids = tokenizer(chat_texts(tokenizer, prompts), add_special_tokens=False)["input_ids"]
    order = sorted(range(len(prompts)), key=lambda i: len(ids[i]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    longest = max((len(row) for row in ids), default=0)
    size = max(1, batch_size or rows_in_budget(model, longest + new_tokens) // copies)
    device = next(model.parameters()).device
    for start in range(0, len(order), size):
        index = order[start : start + size]
        width = max(len(ids[i]) for i in index)
        input_ids = torch.tensor([[pad] * (width - len(ids[i])) + ids[i] for i in index], device=device)
        mask = torch.tensor([[0] * (width - len(ids[i])) + [1] * len(ids[i]) for i in index], device=device)
        yield _Batch(index, input_ids, mask)


def stop_ids_of(tokenizer) -> set[int]:
    """The token ids that end an answer: the tokenizer's end-of-sequence (end-of-turn) and padding tokens."""
    return {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}


def answer_from_ids(tokenizer, ids: list[int], stop_ids: set[int], cut: bool | None = None) -> GeneratedAnswer:
    """The answer in `ids` (new tokens only): up to the first stop token. `cut` says whether it ran to the length
    cap; None: when it holds no stop token (a decoder that strips the stop token says so itself)."""
    stop = next((k for k, t in enumerate(ids) if t in stop_ids), None)
    count = len(ids) if stop is None else stop
    truncated = stop is None if cut is None else cut
    return GeneratedAnswer(tokenizer.decode(ids[:count], skip_special_tokens=True).strip(), count, truncated)


@contextmanager
def _generating(model) -> Iterator[torch.device]:
    """Eval mode and the adapter folded for the block (both restored after it); yields the model's device."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), adapter_folded(model):
            yield next(model.parameters()).device
    finally:
        model.train(was_training)


def generate_token_ids(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int = 192,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[list[int]]:
    """The greedy new tokens of each prompt's answer, in the order of `prompts`: up to and including the first stop
    token, or `max_new_tokens` tokens — token for token what `model.generate(do_sample=False)` answers.

    Prompts are sorted by token length and answered `batch_size` at a time (None: as many as `rows_in_budget`
    allows — on a CPU a decode step costs little more for more rows); `progress(n)` is called after each batch with
    the number of prompts it answered.
    """
    answers: list[list[int]] = [[] for _ in prompts]
    with _generating(model):
        for batch in _length_batches(model, tokenizer, prompts, batch_size, max_new_tokens):
            new_tokens = decode(model, batch.input_ids, batch.attention_mask, max_new_tokens, stop_ids_of(tokenizer))
            for index, ids in zip(batch.index, new_tokens, strict=True):
                answers[index] = ids
            if progress:
                progress(len(batch.index))
    return answers


def generate_answers(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int = 192,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[GeneratedAnswer]:
    """Greedy answers, one `GeneratedAnswer` per prompt, in the order of `prompts` (`generate_token_ids`, decoded)."""
    stop_ids = stop_ids_of(tokenizer)
    ids = generate_token_ids(model, tokenizer, prompts, max_new_tokens, batch_size, progress)
    return [answer_from_ids(tokenizer, answer, stop_ids) for answer in ids]


def sample_answers(
    model,
    tokenizer,
    prompts: list[str],
    settings: SamplingSettings,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[list[GeneratedAnswer]]:
    """`settings.samples` sampled answers per prompt, in the order of `prompts` (after the greedy one when
    `settings.greedy`).

    Prompts are sorted by token length and batched `batch_size` prompts at a time (None: as many as
    `rows_in_budget` allows for `settings.samples` rows each, plus one for the greedy answer), each prompt run once
    and its cache copied for its samples and greedy answer, all decoded in one pass; the sampler's generator is seeded
    with `settings.seed` plus the batch's number, so a call is repeatable on one machine. `progress(n)` is called
    after each batch with the number of prompts it answered.
    """
    answers: list[list[GeneratedAnswer]] = [[] for _ in prompts]
    stop_ids = stop_ids_of(tokenizer)
    # The greedy answer rides in the same decode as the samples: one more copy of the prompt's cache, picked by
    # argmax (a decode step's cost on a CPU is mostly reading the weights, whatever the rows).
    copies = settings.samples + int(settings.greedy)
    with _generating(model) as device:
        for number, batch in enumerate(
            _length_batches(model, tokenizer, prompts, batch_size, settings.max_new_tokens, copies)
        ):
            generator = torch.Generator(device=device).manual_seed(settings.seed + number)
            choose = nucleus_sampler(settings.temperature, settings.top_p, generator)
            new_tokens = decode(
                model,
                batch.input_ids,
                batch.attention_mask,
                settings.max_new_tokens,
                stop_ids,
                choose,
                copies=copies,
                greedy_first=settings.greedy,
            )
            for row, index in enumerate(batch.index):
                answers[index] = [
                    answer_from_ids(tokenizer, ids, stop_ids) for ids in new_tokens[row * copies : (row + 1) * copies]
                ]
            if progress:
                progress(len(batch.index))
    return answers

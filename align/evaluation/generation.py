"""Batched generation with the model's chat template: greedy answers (probes, `align eval`) and sampled ones
(on-policy stages), through align's decode loop (`decoding.py`) with any LoRA adapter folded into the base weights
for the duration (`merged_adapter.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from align.evaluation.decoding import decode, greedy, nucleus_sampler
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
    (1.0 = off), each at most `max_new_tokens` tokens; `seed` makes a call repeatable."""

    samples: int = 4
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 160
    seed: int = 0


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


def _length_batches(tokenizer, prompts: list[str], batch_size: int, device) -> Iterator[_Batch]:
    """Batches of `batch_size` prompts, shortest chat text (in tokens) first, so a batch holds little padding."""
    ids = tokenizer(chat_texts(tokenizer, prompts), add_special_tokens=False)["input_ids"]
    order = sorted(range(len(prompts)), key=lambda i: len(ids[i]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    for start in range(0, len(order), max(1, batch_size)):
        index = order[start : start + max(1, batch_size)]
        width = max(len(ids[i]) for i in index)
        input_ids = torch.tensor([[pad] * (width - len(ids[i])) + ids[i] for i in index], device=device)
        mask = torch.tensor([[0] * (width - len(ids[i])) + [1] * len(ids[i]) for i in index], device=device)
        yield _Batch(index, input_ids, mask)


def _stop_ids(tokenizer) -> set[int]:
    return {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}


def _answer(tokenizer, ids: list[int], stop_ids: set[int]) -> GeneratedAnswer:
    """The answer in `ids` (new tokens only): up to the first stop token, cut at the cap when there is none."""
    stop = next((k for k, t in enumerate(ids) if t in stop_ids), None)
    count = len(ids) if stop is None else stop
    return GeneratedAnswer(tokenizer.decode(ids[:count], skip_special_tokens=True).strip(), count, stop is None)


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


def generate_answers(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int = 192,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> list[GeneratedAnswer]:
    """Greedy answers, one `GeneratedAnswer` per prompt, in the order of `prompts` — token for token what
    `model.generate(do_sample=False)` answers.

    Prompts are sorted by token length and answered `batch_size` at a time; `progress(n)` is called after each batch
    with the number of prompts it answered.
    """
    answers: list[GeneratedAnswer | None] = [None] * len(prompts)
    stop_ids = _stop_ids(tokenizer)
    with _generating(model) as device:
        for batch in _length_batches(tokenizer, prompts, batch_size, device):
            new_tokens = decode(model, batch.input_ids, batch.attention_mask, max_new_tokens, stop_ids, greedy)
            for index, ids in zip(batch.index, new_tokens, strict=True):
                answers[index] = _answer(tokenizer, ids, stop_ids)
            if progress:
                progress(len(batch.index))
    return answers  # type: ignore[return-value]


def sample_answers(
    model,
    tokenizer,
    prompts: list[str],
    settings: SamplingSettings,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> list[list[GeneratedAnswer]]:
    """`settings.samples` sampled answers per prompt, in the order of `prompts`.

    Prompts are sorted by token length and batched `batch_size` prompts at a time, each prompt run once and its
    cache copied for its samples; the sampler's generator is seeded with `settings.seed` plus the batch's number, so
    a call is repeatable on one machine. `progress(n)` is called after each batch with the number of prompts it
    answered.
    """
    answers: list[list[GeneratedAnswer]] = [[] for _ in prompts]
    stop_ids = _stop_ids(tokenizer)
    with _generating(model) as device:
        for number, batch in enumerate(_length_batches(tokenizer, prompts, batch_size, device)):
            generator = torch.Generator(device=device).manual_seed(settings.seed + number)
            choose = nucleus_sampler(settings.temperature, settings.top_p, generator)
            new_tokens = decode(
                model,
                batch.input_ids,
                batch.attention_mask,
                settings.max_new_tokens,
                stop_ids,
                choose,
                copies=settings.samples,
            )
            for row, index in enumerate(batch.index):
                copies = new_tokens[row * settings.samples : (row + 1) * settings.samples]
                answers[index] = [_answer(tokenizer, ids, stop_ids) for ids in copies]
            if progress:
                progress(len(batch.index))
    return answers

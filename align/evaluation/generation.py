"""Batched generation with the model's chat template: greedy answers (probes, `align eval`) and sampled ones
(on-policy stages)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GeneratedAnswer:
    """One greedy answer: its text, its length in tokens (without the end-of-turn token), and `truncated`: whether it
    ran to `max_new_tokens` without an end-of-turn token, i.e. was cut at the length cap."""

    text: str
    tokens: int
    truncated: bool


def chat_inputs(tokenizer, prompts: list[str]) -> dict[str, torch.Tensor]:
    """Left-padded token ids of each prompt as a user turn followed by the assistant generation prompt."""
    texts = [
        tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
        if tokenizer.chat_template
        else p
        for p in prompts
    ]
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        return tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = previous_side


@dataclass(frozen=True)
class SamplingSettings:
    """How on-policy answers are sampled: `samples` answers per prompt at `temperature` with nucleus `top_p`
    (1.0 = off), each at most `max_new_tokens` tokens; `seed` makes a call repeatable."""

    samples: int = 4
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 160
    seed: int = 0


def _answer(tokenizer, ids: list[int], stop_ids: set[int]) -> GeneratedAnswer:
    """The answer in `ids` (new tokens only): up to the first stop token, cut at the cap when there is none."""
    stop = next((k for k, t in enumerate(ids) if t in stop_ids), None)
    count = len(ids) if stop is None else stop
    return GeneratedAnswer(tokenizer.decode(ids[:count], skip_special_tokens=True).strip(), count, stop is None)


@torch.no_grad()
def generate_answers(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int = 192,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> list[GeneratedAnswer]:
    """Greedy answers, one `GeneratedAnswer` per prompt.

    Prompts are sorted by length before batching so a batch wastes little on padding; answers come back in the
    order of `prompts`. `progress(n)` is called after each batch with the number of prompts it answered.
    """
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    answers: list[GeneratedAnswer | None] = [None] * len(prompts)
    device = next(model.parameters()).device
    stop_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    was_training = model.training
    model.eval()
    for start in range(0, len(order), batch_size):
        batch_index = order[start : start + batch_size]
        inputs = chat_inputs(tokenizer, [prompts[i] for i in batch_index]).to(device)
        output = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        for row, index in enumerate(batch_index):
            answers[index] = _answer(tokenizer, new_tokens[row].tolist(), stop_ids)
        if progress:
            progress(len(batch_index))
    model.train(was_training)
    return answers  # type: ignore[return-value]


@torch.no_grad()
def sample_answers(
    model,
    tokenizer,
    prompts: list[str],
    settings: SamplingSettings,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> list[list[GeneratedAnswer]]:
    """`settings.samples` sampled answers per prompt, in the order of `prompts`.

    Prompts are sorted by length and batched `batch_size` prompts at a time (each with all its samples); the
    generator is seeded with `settings.seed` plus the batch's number, so a call is repeatable on one machine.
    `progress(n)` is called after each batch with the number of prompts it answered.
    """
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    answers: list[list[GeneratedAnswer]] = [[] for _ in prompts]
    device = next(model.parameters()).device
    stop_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    was_training = model.training
    model.eval()
    for number, start in enumerate(range(0, len(order), batch_size)):
        batch_index = order[start : start + batch_size]
        inputs = chat_inputs(tokenizer, [prompts[i] for i in batch_index]).to(device)
        torch.manual_seed(settings.seed + number)
        output = model.generate(
            **inputs,
            max_new_tokens=settings.max_new_tokens,
            do_sample=True,
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=0,
            num_return_sequences=settings.samples,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        for row, index in enumerate(batch_index):
            for sample in range(settings.samples):
                ids = new_tokens[row * settings.samples + sample].tolist()
                answers[index].append(_answer(tokenizer, ids, stop_ids))
        if progress:
            progress(len(batch_index))
    model.train(was_training)
    return answers

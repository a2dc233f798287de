"""Batched greedy generation with the model's chat template."""

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
            ids = [t for t in new_tokens[row].tolist()]
            stop = next((k for k, t in enumerate(ids) if t in stop_ids), None)
            count = len(ids) if stop is None else stop
            text = tokenizer.decode(ids[:count], skip_special_tokens=True).strip()
            answers[index] = GeneratedAnswer(text, count, truncated=stop is None)
        if progress:
            progress(len(batch_index))
    model.train(was_training)
    return answers  # type: ignore[return-value]

"""K rejected answers per prompt: tokenisation and collation for rows whose `rejected` is a list.

trl's preference pipeline handles one rejected answer per row. For K negatives, each row is tokenised into
`prompt_ids`, `chosen_ids` and `rejected_ids` as a list of K id lists (with trl's own tokenisation and prompt/completion
boundary rule), and the collator lays a batch of B rows out as trl does for pairs, extended: B chosen sequences first,
then the B first negatives, the B second negatives, ... (K·B rejected rows). `rejected_per_prompt` = K travels with the
batch so the trainer can reshape the rejected log-probs to (B, K). With K = 1 the layout equals trl's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from align.training.private_api import DataCollatorForPreference, common_prefix_length, pad, trl_tokenize


def is_multi_negative(example: dict) -> bool:
    """Whether `rejected` holds several answers: a list of strings, or (conversational) a list of message lists."""
    rejected = example.get("rejected")
    return isinstance(rejected, list) and bool(rejected) and isinstance(rejected[0], (str, list))


def tokenize_multi_negative(example: dict, processing_class, eos_token: str) -> dict[str, Any]:
    """Token ids for one K-negative row; the prompt ends where the prompt and every completion diverge."""
    prompt = example["prompt"]
    conversational = isinstance(prompt, list)

    def with_prompt(completion) -> list[int]:
        if conversational:
            return trl_tokenize(processing_class, prompt + completion)["input_ids"]
        text = completion if completion.endswith(eos_token) else completion + eos_token
        return trl_tokenize(processing_class, prompt + text)["input_ids"]

    if conversational:
        prompt_ids = trl_tokenize(processing_class, prompt, add_generation_prompt=True)["input_ids"]
    else:
        prompt_ids = trl_tokenize(processing_class, prompt)["input_ids"]
    chosen = with_prompt(example["chosen"])
    rejected = [with_prompt(answer) for answer in example["rejected"]]
    prompt_len = min(common_prefix_length(prompt_ids, ids) for ids in [chosen, *rejected])
    return {
        "prompt_ids": prompt_ids[:prompt_len],
        "chosen_ids": chosen[prompt_len:],
        "rejected_ids": [ids[prompt_len:] for ids in rejected],
    }


@dataclass
class MultiNegativeCollator(DataCollatorForPreference):
    """trl's preference collator, extended to rows with K rejected answers (see the module docstring)."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        first = examples[0]["rejected_ids"]
        if not first or not isinstance(first[0], list):
            return {**super().torch_call(examples), "rejected_per_prompt": torch.tensor(1)}
        k = len(first)
        if any(len(example["rejected_ids"]) != k for example in examples):
            raise ValueError("every row of a batch must have the same number of rejected answers")
        completions = [ex["chosen_ids"] for ex in examples]
        completions += [ex["rejected_ids"][j] for j in range(k) for ex in examples]
        prompts = [ex["prompt_ids"] for ex in examples] * (k + 1)
        sequences = [p + c for p, c in zip(prompts, completions, strict=True)]
        masks = [[0] * len(p) + [1] * len(c) for p, c in zip(prompts, completions, strict=True)]
        if self.max_length is not None:
            keep = (
                slice(None, self.max_length) if self.truncation_mode == "keep_start" else slice(-self.max_length, None)
            )
            sequences, masks = [s[keep] for s in sequences], [m[keep] for m in masks]
        padding = {"padding_side": "right", "pad_to_multiple_of": self.pad_to_multiple_of}
        output = {
            "input_ids": pad([torch.tensor(s) for s in sequences], padding_value=self.pad_token_id, **padding),
            "attention_mask": pad(
                [torch.ones(len(s), dtype=torch.long) for s in sequences], padding_value=0, **padding
            ),
            "completion_mask": pad([torch.tensor(m, dtype=torch.long) for m in masks], padding_value=0, **padding),
            "rejected_per_prompt": torch.tensor(k),
        }
        if "ref_chosen_logps" in examples[0]:
            output["ref_chosen_logps"] = torch.tensor([ex["ref_chosen_logps"] for ex in examples])
            output["ref_rejected_logps"] = torch.tensor([ex["ref_rejected_logps"] for ex in examples])
        return output


def rejected_per_prompt(inputs: dict) -> int:
    """K, the rejected answers per prompt, of a batch `MultiNegativeCollator` collated."""
    return int(inputs["rejected_per_prompt"])


def split_chosen_rejected(values: torch.Tensor, rejected_per_prompt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B·(1+K),) per-row values → chosen (B,) and rejected (B,) for K = 1 or (B, K) for K > 1."""
    k = int(rejected_per_prompt)
    batch = values.size(0) // (k + 1)
    chosen, rejected = values[:batch], values[batch:]
    return chosen, rejected if k == 1 else rejected.view(k, batch).transpose(0, 1)

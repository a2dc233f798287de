"""Held-out pair accuracy: does the tuned model prefer the chosen answer?

With a reference (the base model, i.e. the adapter disabled) the preference is DPO's implicit reward margin,
(π_c − ref_c) − (π_r − ref_r) > 0; reference-free runs compare length-normalised log-probs, π_c/len_c > π_r/len_r.
Log-probs are summed over completion tokens with the model's chat template, as in training.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from align.data.rows import PreferenceRow
from align.training.logprobs import add_completion_logps
from align.training.multi_negative import (
    MultiNegativeCollator,
    rejected_per_prompt,
    split_chosen_rejected,
    tokenize_multi_negative,
)


def _batches(rows: list[PreferenceRow], tokenizer, batch_size: int, max_length: int | None):
    collator = MultiNegativeCollator(pad_token_id=tokenizer.pad_token_id, max_length=max_length)
    for start in range(0, len(rows), batch_size):
        examples = []
        for row in rows[start : start + batch_size]:
            example = row.to_conversational() if tokenizer.chat_template else row.to_text()
            if isinstance(row.rejected, str):
                example["rejected"] = [example["rejected"]]
            examples.append(tokenize_multi_negative(example, tokenizer, tokenizer.eos_token))
        yield collator(examples)


def _logps(model, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        completion_mask=batch["completion_mask"],
        completion_logps=True,
    )
    k = rejected_per_prompt(batch)
    chosen, rejected = split_chosen_rejected(out.logps.float(), k)
    chosen_len, rejected_len = split_chosen_rejected(out.lengths.float().clamp(min=1), k)
    return chosen, rejected, chosen_len, rejected_len


@torch.no_grad()
def pair_accuracy(
    model,
    tokenizer,
    rows: list[PreferenceRow],
    reference_free: bool = False,
    batch_size: int = 8,
    max_length: int | None = 1024,
) -> dict[str, float | dict[str, float]]:
    """`pair_accuracy` over all rows (a row with K negatives counts K comparisons) and `pair_accuracy_by_kind`.

    `model` is a `PeftModel` unless `reference_free`; its adapter is disabled for the reference pass.
    """
    add_completion_logps(model.get_base_model() if hasattr(model, "get_base_model") else model)
    device = next(model.parameters()).device
    wins: list[torch.Tensor] = []
    for batch in _batches(rows, tokenizer, batch_size, max_length):
        batch = {key: value.to(device) if torch.is_tensor(value) else value for key, value in batch.items()}
        chosen, rejected, chosen_len, rejected_len = _logps(model, batch)
        if reference_free:
            chosen, rejected = chosen / chosen_len, rejected / rejected_len
        else:
            with model.disable_adapter():
                ref_chosen, ref_rejected, _, _ = _logps(model, batch)
            chosen, rejected = chosen - ref_chosen, rejected - ref_rejected
        margin = chosen.unsqueeze(-1) - rejected.reshape(len(chosen), -1)
        wins.append((margin > 0).float().cpu())
    per_row = torch.cat(wins)
    by_kind: dict[str, list[torch.Tensor]] = defaultdict(list)
    for row, row_wins in zip(rows, per_row, strict=True):
        kinds = row.meta.get("rejected_kinds") or [row.meta.get("kind") or "unlabelled"] * len(row_wins)
        for kind, win in zip(kinds, row_wins, strict=True):
            by_kind[str(kind)].append(win)
    return {
        "pair_accuracy": per_row.mean().item(),
        "pair_accuracy_by_kind": {kind: torch.stack(v).mean().item() for kind, v in sorted(by_kind.items())},
    }

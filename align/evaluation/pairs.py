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


def _tokenized(row: PreferenceRow, tokenizer) -> dict:
    example = row.to_conversational() if tokenizer.chat_template else row.to_text()
    if isinstance(row.rejected, str):
        example["rejected"] = [example["rejected"]]
    return tokenize_multi_negative(example, tokenizer, tokenizer.eos_token)


def _longest(example: dict) -> int:
    answers = [example["chosen_ids"], *example["rejected_ids"]]
    return len(example["prompt_ids"]) + max(len(ids) for ids in answers)


def _batches(rows: list[PreferenceRow], tokenizer, batch_size: int, max_length: int | None):
    """(row indices, collated batch) pairs: rows sorted by their number of rejected answers, then by their longest
    sequence, so a batch pads little (padding changes no log-prob: masked positions are never attended to or
    counted)."""
    collator = MultiNegativeCollator(pad_token_id=tokenizer.pad_token_id, max_length=max_length)
    examples = [_tokenized(row, tokenizer) for row in rows]
    order = sorted(range(len(rows)), key=lambda i: (len(examples[i]["rejected_ids"]), _longest(examples[i])))
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        yield index, collator([examples[i] for i in index])


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
def pair_margins(
    model,
    tokenizer,
    rows: list[PreferenceRow],
    reference_free: bool = False,
    batch_size: int = 8,
    max_length: int | None = 1024,
) -> list[torch.Tensor]:
    """Each row's preference margins, one per rejected answer (K values for K negatives), in row order: the implicit
    reward margin (π_c − ref_c) − (π_r − ref_r) in nats of summed completion log-probs, or with `reference_free`
    π_c/len_c − π_r/len_r (nats per token). A margin > 0 is a win for the chosen answer.

    `model` is a `PeftModel` unless `reference_free`; its adapter is disabled for the reference pass.
    """
    add_completion_logps(model.get_base_model() if hasattr(model, "get_base_model") else model)
    device = next(model.parameters()).device
    margins: list[torch.Tensor | None] = [None] * len(rows)
    for index, batch in _batches(rows, tokenizer, batch_size, max_length):
        batch = {key: value.to(device) if torch.is_tensor(value) else value for key, value in batch.items()}
        chosen, rejected, chosen_len, rejected_len = _logps(model, batch)
        if reference_free:
            chosen, rejected = chosen / chosen_len, rejected / rejected_len
        else:
            with model.disable_adapter():
                ref_chosen, ref_rejected, _, _ = _logps(model, batch)
            chosen, rejected = chosen - ref_chosen, rejected - ref_rejected
        margin = chosen.unsqueeze(-1) - rejected.reshape(len(chosen), -1)
        for at, row_margins in zip(index, margin.cpu(), strict=True):
            margins[at] = row_margins
    return margins  # type: ignore[return-value]


def pair_accuracy(
    model,
    tokenizer,
    rows: list[PreferenceRow],
    reference_free: bool = False,
    batch_size: int = 8,
    max_length: int | None = 1024,
) -> dict[str, float | dict[str, float]]:
    """`pair_accuracy`: the share of wins (`pair_margins` > 0) over all rows (a row with K negatives counts K
    comparisons), and `pair_accuracy_by_kind`."""
    margins = pair_margins(model, tokenizer, rows, reference_free, batch_size, max_length)
    wins = [(m > 0).float() for m in margins]
    by_kind: dict[str, list[torch.Tensor]] = defaultdict(list)
    for row, row_wins in zip(rows, wins, strict=True):
        kinds = row.meta.get("rejected_kinds") or [row.meta.get("kind") or "unlabelled"] * len(row_wins)
        for kind, win in zip(kinds, row_wins, strict=True):
            by_kind[str(kind)].append(win)
    return {
        "pair_accuracy": torch.cat(wins).mean().item(),
        "pair_accuracy_by_kind": {kind: torch.stack(v).mean().item() for kind, v in sorted(by_kind.items())},
    }

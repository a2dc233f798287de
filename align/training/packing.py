"""Packed, prefix-shared preference batches: each row's prompt is run once, its answers follow it without padding.

trl's layout gives every answer its own padded row holding its own copy of the prompt: with B pairs, 2B rows of the
longest sequence's length. The packed layout puts the whole batch in one row of N tokens:

    [ shared₀ | chosen₀ | rejected₀ ] [ shared₁ | chosen₁ | rejected₁ ] ...      (K rejected answers: K own parts)

`shared` is the longest common prefix of a row's sequences (the prompt, plus any opening tokens the answers share);
each answer's own part continues the position ids from the end of the shared part, so RoPE sees the same positions
as in its padded row. Attention (`align.training.segment_attention`) runs per row segment with a mask that lets a
token see the shared part and the earlier tokens of its own answer, never another answer: every hidden state is the
one the padded layout computes, so the log-probs are equal within float rounding (tested to 1e-5).

Sequences are truncated exactly as trl's collator truncates them (prompt + answer to `max_length`, keep_start or
keep_end) before they are packed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from transformers.data.data_collator import DataCollatorMixin

from align.training.packed_batch import CARRIED_COLUMNS, PackedBatch

# A sequence as trl's collator builds it: token ids and a 0/1 completion mask of the same length.
Sequence = tuple[list[int], list[int]]


def common_prefix(sequences: list[list[int]]) -> int:
    """Length of the longest prefix all `sequences` share."""
    shortest = min(len(ids) for ids in sequences)
    for position in range(shortest):
        token = sequences[0][position]
        if any(ids[position] != token for ids in sequences[1:]):
            return position
    return shortest


def truncate(sequence: Sequence, max_length: int | None, truncation_mode: str) -> Sequence:
    """trl's per-sequence truncation: keep the first (`keep_start`) or last (`keep_end`) `max_length` tokens."""
    if max_length is None:
        return sequence
    if truncation_mode not in ("keep_start", "keep_end"):
        raise ValueError(f"unsupported truncation_mode {truncation_mode!r}: use keep_start or keep_end")
    keep = slice(None, max_length) if truncation_mode == "keep_start" else slice(-max_length, None)
    ids, mask = sequence
    return ids[keep], mask[keep]


def row_sequences(example: dict[str, Any]) -> list[Sequence]:
    """The chosen sequence, then each rejected one, of a tokenised row (one `rejected_ids` list, or K of them)."""
    prompt, rejected = example["prompt_ids"], example["rejected_ids"]
    answers = [example["chosen_ids"]] + (list(rejected) if rejected and isinstance(rejected[0], list) else [rejected])
    return [(prompt + answer, [0] * len(prompt) + [1] * len(answer)) for answer in answers]


def row_length(example: dict[str, Any]) -> int:
    """Tokens of a row's longest sequence (prompt + longest answer): what length-grouped sampling sorts by."""
    return max(len(ids) for ids, _ in row_sequences(example))


def pack_rows(rows: list[list[Sequence]]) -> PackedBatch:
    """Pack rows (each: chosen sequence, then K rejected) into one prefix-shared row; see the module docstring and
    `PackedBatch` for the tensors. A token is scored where trl scores it: completion mask 1, not the first token of
    the sequence."""
    batch, k = len(rows), len(rows[0]) - 1
    if any(len(sequences) != k + 1 for sequences in rows):
        raise ValueError("every row of a batch must have the same number of rejected answers")
    ids_out, positions, parts, segment_lengths = [], [], [], []
    target_index, target_ids, target_sequence, target_rank = [], [], [], []
    sequence_lengths = [0] * (batch * (k + 1))
    for i, sequences in enumerate(rows):
        start = len(ids_out)
        shared = common_prefix([ids for ids, _ in sequences])
        ids_out += sequences[0][0][:shared]
        positions += range(shared)
        parts += [0] * shared
        for j, (ids, mask) in enumerate(sequences):
            own_start = len(ids_out)
            ids_out += ids[shared:]
            positions += range(shared, len(ids))
            parts += [j + 1] * (len(ids) - shared)
            sequence = i + j * batch
            sequence_lengths[sequence] = len(ids)
            scored = [t for t in range(1, len(ids)) if mask[t]]
            # Position t−1 predicts token t; inside the shared part it is the one shared hidden state.
            target_index += [start + t - 1 if t - 1 < shared else own_start + t - 1 - shared for t in scored]
            target_ids += [ids[t] for t in scored]
            target_sequence += [sequence] * len(scored)
            target_rank += range(len(scored))
        segment_lengths.append(len(ids_out) - start)

    def long(values) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long)

    return PackedBatch(
        input_ids=long([ids_out]),
        position_ids=long([positions]),
        token_part=long(parts),
        segment_lengths=long(segment_lengths),
        target_index=long(target_index),
        target_ids=long(target_ids),
        target_sequence=long(target_sequence),
        target_rank=long(target_rank),
        sequence_lengths=long(sequence_lengths),
        rejected_per_prompt=long(k),
    )


@dataclass
class PackedPreferenceCollator(DataCollatorMixin):
    """Collates tokenised preference rows (one or K rejected answers) into `pack_rows`'s packed layout, truncated
    as trl's `DataCollatorForPreference` truncates, carrying precomputed reference log-probs when rows have them."""

    max_length: int | None = None
    truncation_mode: str = "keep_start"
    return_tensors: str = "pt"

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        rows = [
            [truncate(sequence, self.max_length, self.truncation_mode) for sequence in row_sequences(example)]
            for example in examples
        ]
        output = pack_rows(rows).to_inputs()
        for column in CARRIED_COLUMNS:
            if column in examples[0]:
                output[column] = torch.tensor([example[column] for example in examples])
        return output


@dataclass
class PackedCompletionCollator(DataCollatorMixin):
    """Collates trl `SFTTrainer`'s tokenised rows (`input_ids`, and `labels` with -100 where a token is not trained
    on; already truncated by trl) into `pack_rows`'s packed layout with one sequence per row (K = 0: the whole
    sequence is the row's segment, attended causally). A token is scored where trl's SFT loss scores it: its label
    is not -100, and it is not the first token of its sequence."""

    return_tensors: str = "pt"

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        rows = []
        for example in examples:
            ids = list(example["input_ids"])
            labels = list(example.get("labels", ids))
            if any(label not in (-100, token) for label, token in zip(labels, ids, strict=True)):
                # The packed path scores the input token itself; labels that name other tokens need trl's collator.
                raise ValueError("a row's labels differ from its input_ids; the packed SFT layout cannot train it")
            rows.append([(ids, [int(label != -100) for label in labels])])
        return pack_rows(rows).to_inputs()


def token_groups(lengths: list[int], max_tokens: int) -> list[tuple[int, int]]:
    """Row ranges `(first, end)` of consecutive rows, each at most `max_tokens` tokens of `lengths` (tokens per row);
    a row longer than that goes alone."""
    groups, start, tokens = [], 0, 0
    for row, length in enumerate(lengths):
        if row > start and tokens + length > max_tokens:
            groups.append((start, row))
            start, tokens = row, 0
        tokens += length
    groups.append((start, len(lengths)))
    return groups


def split_groups(lengths: list[int], groups: list[tuple[int, int]], parts: int) -> list[tuple[int, int]]:
    """`groups` split further into exactly `parts` row ranges (len(groups) ≤ parts ≤ rows): the group with the most
    tokens among those of two or more rows is cut in two, at the row that best halves its tokens, until there are
    enough. Data-parallel processes use it to run the same number of passes (`ContrastiveTrainer.training_step`)."""
    if not len(groups) <= parts <= len(lengths):
        raise ValueError(f"cannot split {len(lengths)} rows in {len(groups)} groups into {parts} parts")
    groups = list(groups)
    while len(groups) < parts:
        index = max((i for i, (a, b) in enumerate(groups) if b - a > 1), key=lambda i: sum(lengths[slice(*groups[i])]))
        first, end = groups[index]
        total = sum(lengths[first:end])
        cut = min(range(first + 1, end), key=lambda row: abs(2 * sum(lengths[first:row]) - total))
        groups[index : index + 1] = [(first, cut), (cut, end)]
    return groups


def split_packed(inputs: Mapping[str, torch.Tensor], max_tokens: int, parts: int | None = None) -> list[dict]:
    """Split a collated packed batch (a dict, see `PackedBatch.from_inputs`) into batch dicts of whole consecutive
    rows, each at most `max_tokens` packed tokens (a row longer than that goes alone); with `parts`, into exactly that
    many (`split_groups`). Each part is a batch `pack_rows` could have built from its rows, carrying their slice of
    trl's `CARRIED_COLUMNS`; a batch that needs no split comes back as itself."""
    packed = PackedBatch.from_inputs(inputs)
    lengths = packed.segment_lengths.tolist()
    groups = token_groups(lengths, max_tokens)
    if parts is not None:
        groups = split_groups(lengths, groups, parts)
    if len(groups) == 1:
        return [inputs]
    return [
        packed.select_rows(first, last).to_inputs()
        | {column: inputs[column][first:last] for column in CARRIED_COLUMNS if column in inputs}
        for first, last in groups
    ]

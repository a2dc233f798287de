"""`PackedBatch`: the contract between the packed collator (`align.training.packing`) and every reader of its batches.

A collated batch travels through transformers' `Trainer` as a dict (its `_prepare_inputs` moves the tensors of
dicts, lists and tuples to the device, not those of a dataclass), so the collator emits `PackedBatch.to_inputs()`
and every reader turns the dict back into the dataclass with `PackedBatch.from_inputs`. The dict's keys are the
field names and appear nowhere else in align: a reader names attributes, and a key missing from the dict, or one
that is neither a field nor one of trl's carried columns (`CARRIED_COLUMNS`), is a `ValueError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import torch

# trl's precomputed reference log-probs, (B,) each: dataset columns the collator carries beside the packed tensors
# under trl's own names (the padded layout carries them the same way), split by row with the batch.
CARRIED_COLUMNS = ("ref_chosen_logps", "ref_rejected_logps")


@dataclass(frozen=True)
class PackedBatch:
    """One packed, prefix-shared batch of B rows with K rejected answers each (layout: `align.training.packing`).

    Sizes: N packed tokens, M scored completion tokens, S = B·(1+K) sequences in trl's order (the B chosen, then the
    B first rejected, the B second rejected, ...). All tensors hold `torch.long`.
    """

    input_ids: torch.Tensor
    """(1, N) token ids of the packed row."""
    position_ids: torch.Tensor
    """(1, N) each token's position in its unpacked sequence (an own part continues from its shared part's end)."""
    token_part: torch.Tensor
    """(N,) 0 for a row's shared part, j+1 for the own part of the row's sequence j (0 = chosen)."""
    segment_lengths: torch.Tensor
    """(B,) packed tokens per row."""
    target_index: torch.Tensor
    """(M,) packed position whose hidden state predicts each scored token."""
    target_ids: torch.Tensor
    """(M,) the scored tokens' ids."""
    target_sequence: torch.Tensor
    """(M,) the sequence (0..S−1, trl's order) each scored token belongs to."""
    target_rank: torch.Tensor
    """(M,) each scored token's index among its sequence's scored tokens."""
    sequence_lengths: torch.Tensor
    """(S,) tokens per unpacked sequence (prompt + answer)."""
    rejected_per_prompt: torch.Tensor
    """0-dim: K, rejected answers per row."""

    @property
    def rows(self) -> int:
        """B, the rows of the batch."""
        return len(self.segment_lengths)

    def to_inputs(self) -> dict[str, torch.Tensor]:
        """The batch as the dict the trainer's data loader yields (what `from_inputs` reads back)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, torch.Tensor]) -> PackedBatch:
        """The packed tensors of a collated batch dict; `ValueError` naming any field it lacks or any key that is
        neither a field nor one of `CARRIED_COLUMNS`."""
        names = [field.name for field in fields(cls)]
        missing = [name for name in names if name not in inputs]
        unknown = sorted(set(inputs) - set(names) - set(CARRIED_COLUMNS))
        if missing or unknown:
            raise ValueError(f"not a packed batch: missing {missing}, unknown {unknown}")
        return cls(**{name: inputs[name] for name in names})

    def select_rows(self, first: int, last: int) -> PackedBatch:
        """Rows first..last−1 as a packed batch of their own: what `pack_rows` builds from those rows alone."""
        ends = self.segment_lengths.cumsum(0)
        t0, t1 = (int(ends[first - 1]) if first else 0), int(ends[last - 1])
        row, answer = self.target_sequence % self.rows, self.target_sequence // self.rows
        keep = (row >= first) & (row < last)
        order = torch.arange(len(self.sequence_lengths)).view(-1, self.rows)[:, first:last].reshape(-1)
        return PackedBatch(
            input_ids=self.input_ids[:, t0:t1],
            position_ids=self.position_ids[:, t0:t1],
            token_part=self.token_part[t0:t1],
            segment_lengths=self.segment_lengths[first:last],
            target_index=self.target_index[keep] - t0,
            target_ids=self.target_ids[keep],
            target_sequence=(row[keep] - first) + answer[keep] * (last - first),
            target_rank=self.target_rank[keep],
            sequence_lengths=self.sequence_lengths[order],
            rejected_per_prompt=self.rejected_per_prompt,
        )

    def sequences(self) -> list[torch.Tensor]:
        """The S unpacked sequences' token ids (shared part + own part), in trl's order, on the CPU."""
        # One device → host copy per batch (not one per row): on a GPU each small copy would be a synchronisation.
        ids, part = self.input_ids[0].cpu(), self.token_part.cpu()
        ends = self.segment_lengths.cpu().cumsum(0).tolist()
        k = int(self.rejected_per_prompt)
        batch = len(ends)
        unpacked: list[torch.Tensor] = [ids.new_empty(0)] * (batch * (k + 1))
        for i, (start, end) in enumerate(zip([0] + ends[:-1], ends, strict=True)):
            row_ids, row_part = ids[start:end], part[start:end]
            shared = row_ids[row_part == 0]
            for j in range(k + 1):
                unpacked[i + j * batch] = torch.cat([shared, row_ids[row_part == j + 1]])
        return unpacked


def is_packed(inputs: Mapping) -> bool:
    """Whether a collated batch dict is in the packed layout (else trl's padded one)."""
    # A field only the packed layout has.
    return "target_index" in inputs

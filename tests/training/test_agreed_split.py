"""Micro-batch counts agreed between data-parallel processes: `split_groups` (pure) and the packed split it drives."""

import pytest
import torch

from align.training.packed_batch import PackedBatch
from align.training.packing import split_groups, split_packed, token_groups


@pytest.mark.parametrize(
    ("lengths", "limit", "parts"),
    [
        ([360, 383, 379, 388], 770, 4),  # the FSDP test's rank 1 at step 1: 2 groups of its own, 4 wanted
        ([10, 10, 10, 10, 10, 10], 100, 3),  # one group of its own, 3 wanted
        ([50, 1, 1, 1, 50, 1], 60, 5),
        ([5, 7, 9], 100, 3),  # as many parts as rows
        ([387, 399, 395, 385], 770, 4),  # already 4: unchanged
    ],
)
def test_split_groups_gives_exactly_the_agreed_count_of_whole_consecutive_rows(lengths, limit, parts):
    """Every row exactly once, in order, in exactly `parts` non-empty ranges, and each range inside one of the rank's
    own token groups (it is only split further, never merged past the limit). If this fails, ranks run different
    numbers of passes (FSDP hangs) or a row is dropped or trained twice."""
    own = token_groups(lengths, limit)
    groups = split_groups(lengths, own, parts)
    assert len(groups) == parts
    assert [row for first, end in groups for row in range(first, end)] == list(range(len(lengths)))
    assert all(end > first for first, end in groups)
    assert all(any(a <= first and end <= b for a, b in own) for first, end in groups)
    if len(own) == parts:
        assert groups == own


def test_split_groups_halves_the_heaviest_group_by_tokens():
    """[10, 10, 10, 10 | 100] into 3: the 100-token row cannot be split, so the 40-token group is halved at row 2.
    If this fails, the extra parts are not balanced (more activation memory than needed in the largest pass)."""
    assert split_groups([10, 10, 10, 10, 100], [(0, 4), (4, 5)], 3) == [(0, 2), (2, 4), (4, 5)]
    assert split_groups([300, 10, 10, 10], [(0, 4)], 2) == [(0, 1), (1, 4)]


def test_split_groups_refuses_impossible_counts():
    """More parts than rows, or fewer than the rank's own groups, is a programming error. If this fails, a rank
    would silently run a different number of passes than the others."""
    with pytest.raises(ValueError):
        split_groups([5, 5], [(0, 1), (1, 2)], 3)
    with pytest.raises(ValueError):
        split_groups([5, 5], [(0, 1), (1, 2)], 1)


def test_split_packed_with_parts_keeps_every_token():
    """A packed batch of 4 rows, agreed count 3: 3 parts whose tokens and scored targets add up to the batch's. If
    this fails, `parts` is ignored or a split part loses tokens."""
    lengths = torch.tensor([6, 4, 5, 3])
    n = int(lengths.sum())
    batch = PackedBatch(
        input_ids=torch.arange(n).view(1, -1),
        position_ids=torch.arange(n).view(1, -1),
        token_part=torch.zeros(n, dtype=torch.long),
        segment_lengths=lengths,
        target_index=torch.tensor([1, 7, 12, 16]),
        target_ids=torch.tensor([2, 8, 13, 17]),
        target_sequence=torch.tensor([0, 1, 2, 3]),
        target_rank=torch.zeros(4, dtype=torch.long),
        sequence_lengths=torch.tensor([3, 2, 3, 2, 3, 2, 2, 1]),
        rejected_per_prompt=torch.tensor(1),
    )
    parts = [PackedBatch.from_inputs(p) for p in split_packed(batch.to_inputs(), 100, parts=3)]
    assert len(parts) == 3
    assert torch.equal(torch.cat([p.input_ids for p in parts], dim=1), batch.input_ids)
    assert sum(len(p.target_ids) for p in parts) == 4

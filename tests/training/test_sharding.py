"""Row fingerprints of a preference batch and the cross-process report built from them."""

from types import SimpleNamespace

import torch

from align.training.sharding import row_fingerprints, sharding_report


def _batch(rows: list[list[int]], k: int) -> dict:
    width = max(map(len, rows))
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return {"input_ids": ids, "attention_mask": mask, "rejected_per_prompt": torch.tensor(k)}


def test_fingerprints_follow_trls_layout_and_ignore_padding():
    """B=2, K=2: rows are [c0, c1, r0a, r1a, r0b, r1b]. Example 0 is (c0, r0a, r0b). The same example padded to a
    different width has the same fingerprint; swapping which rejected answers belong to which prompt changes both.
    If this fails, the report would call different rows the same (or the same rows different)."""
    c0, c1, r0a, r1a, r0b, r1b = [1, 2], [1, 3], [4], [5, 6], [7], [8, 9, 9]
    prints = row_fingerprints(_batch([c0, c1, r0a, r1a, r0b, r1b], k=2))
    alone = row_fingerprints(_batch([c0, r0a, r0b], k=2))
    assert len(prints) == 2 and prints[0] == alone[0] and prints[0] != prints[1]
    swapped = row_fingerprints(_batch([c0, c1, r1a, r0a, r0b, r1b], k=2))
    assert swapped[0] != prints[0] and swapped[1] != prints[1]


def test_single_process_report_counts_rows():
    """One process: its rows, none shared. If this fails, the summary misreports a plain run."""
    report = sharding_report({"a", "b", "c"}, SimpleNamespace(num_processes=1))
    assert report == {"world_size": 1, "rows_per_rank": [3], "rows_on_several_ranks": 0}

"""Which training rows each process saw: fingerprints of the rows in each batch, gathered at the end of a stage,
so `summary.json` shows that data-parallel processes trained on different rows (and how many rows each took)."""

from __future__ import annotations

import hashlib

import torch

from align.training.multi_negative import rejected_per_prompt
from align.training.packed_batch import PackedBatch, is_packed


def row_fingerprints(inputs: dict) -> list[str]:
    """One stable fingerprint per example of a preference batch: the token ids (padding removed) of its chosen
    sequence and each of its K rejected sequences, hashed with blake2b (Python's `hash` differs per process).
    A row has the same fingerprint in the padded and the packed layout.
    """
    if is_packed(inputs):
        packed = PackedBatch.from_inputs(inputs)
        sequences, k = packed.sequences(), int(packed.rejected_per_prompt)
    else:
        sequences, k = _padded_sequences(inputs), rejected_per_prompt(inputs)
    batch = len(sequences) // (k + 1)
    prints = []
    for i in range(batch):
        digest = hashlib.blake2b(digest_size=12)
        for row in [i] + [batch + j * batch + i for j in range(k)]:
            tokens = sequences[row].to(torch.int64).numpy().tobytes()
            digest.update(len(tokens).to_bytes(8, "little") + tokens)
        prints.append(digest.hexdigest())
    return prints


def _padded_sequences(inputs: dict) -> list[torch.Tensor]:
    """trl's layout: B chosen rows, then K blocks of B rejected rows, right-padded."""
    # One device → host copy per batch (not one per row): on a GPU each small copy would be a synchronisation.
    ids, mask = inputs["input_ids"].cpu(), inputs["attention_mask"].cpu().bool()
    return [ids[row][mask[row]] for row in range(ids.size(0))]


def sharding_report(seen: set[str], accelerator) -> dict:
    """`{"world_size", "rows_per_rank", "rows_on_several_ranks"}` from every process's fingerprints. Collective:
    every process must call it. A few rows on several ranks are expected only when the row count does not divide
    evenly (accelerate then repeats rows to give every rank full batches)."""
    from accelerate.utils import gather_object

    per_rank = gather_object([sorted(seen)]) if accelerator.num_processes > 1 else [sorted(seen)]
    counts: dict[str, int] = {}
    for prints in per_rank:
        for fingerprint in prints:
            counts[fingerprint] = counts.get(fingerprint, 0) + 1
    return {
        "world_size": accelerator.num_processes,
        "rows_per_rank": [len(prints) for prints in per_rank],
        "rows_on_several_ranks": sum(1 for n in counts.values() if n > 1),
    }

"""Process set-up for CPU training: glibc keeps freed memory; logit chunks stay under its mmap ceiling."""

import sys

import pytest
import torch

from align.runtime import keep_freed_memory
from align.training.head import CPU_CHUNK_BYTES, default_chunk_tokens


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_keep_freed_memory_applies_on_glibc():
    """If this fails, `align train` on Linux re-faults its activation buffers every step (seconds of system time)."""
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # idempotent


def test_cpu_logit_chunks_fit_under_the_mmap_ceiling():
    """SmolLM2's 49,152-token vocabulary: 85 rows × 49,152 × 4 B ≤ 16 MiB; a GPU keeps 1024-row chunks.
    If this fails, every CPU chunk is a fresh mmap that faults in again."""
    rows = default_chunk_tokens(49152, torch.device("cpu"))
    assert rows == 85 and rows * 49152 * 4 <= CPU_CHUNK_BYTES
    assert default_chunk_tokens(49152, torch.device("cuda")) == 1024
    assert default_chunk_tokens(10**7, torch.device("cpu")) == 16

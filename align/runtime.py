"""Facts about the processes this run is launched with (accelerate/torchrun environment)."""

from __future__ import annotations

import ctypes
import logging
import os
import sys

logger = logging.getLogger(__name__)

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's upper limit on 64-bit systems


def world_size() -> int:
    """Number of processes `accelerate launch`/`torchrun` started (1 when run directly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def multi_process_cpu() -> bool:
    """Several processes and no CUDA device: they must be told to train on the CPU over gloo.

    `accelerate launch --multi_gpu --num_processes 2` on a machine without a GPU starts two processes, but unless the
    process state is created with `cpu=True` each one sees no distributed setup and trains alone on all the data.
    """
    import torch

    return world_size() > 1 and not torch.cuda.is_available()


def process_state():
    """accelerate's process state, created so that multi-process CPU runs really are distributed (and sharded, when
    the launcher asked for FSDP or DeepSpeed: see `align.engines`)."""
    from accelerate import PartialState

    from align.engines import cpu_engine, enable_cpu_engines

    if cpu_engine():
        enable_cpu_engines()
        return PartialState(backend="gloo")
    return PartialState(cpu=multi_process_cpu())


def keep_freed_memory() -> bool:
    """Stop glibc from handing freed memory back to the kernel (CPU training; Linux/glibc only, else a no-op).

    A training step frees and re-allocates the same activation buffers every step. By default glibc serves blocks
    over a moving threshold (from 128 KiB) with fresh mmaps and trims the heap top on free, so each step faults its
    buffers in again: on this project's 2-core VM one SmolLM2 step took 900,000 page faults and 6.5 s of system time
    (16.9 s step → 12.8 s without). Blocks up to 32 MiB now come from the heap and stay there; the process keeps its
    peak resident memory instead of returning it between steps. Returns whether the settings were applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        applied = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
        return libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1 and applied
    except (OSError, AttributeError):  # not glibc (musl, ...)
        logger.debug("mallopt unavailable; freed memory is managed by the platform's allocator")
        return False

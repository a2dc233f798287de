"""Which scaled-dot-product-attention kernels the packed layout's attention calls can use on this device.

The packed layout (align.training.segment_attention) makes, per row, one causal call over the shared part and the
first answer and one masked call per further answer. On CUDA, SDPA with `enable_gqa` and an explicit mask falls back
to the slow math kernel, so align repeats the key/value heads for masked calls there. This script runs one packed
layer's calls with grouped-query heads under each kernel alone and prints which ones accept them:

    python scripts/sdpa_kernels.py --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from align.training.segment_attention import PairSegments, segment_attention  # noqa: E402

KERNELS = {
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "math": SDPBackend.MATH,
}


def packed_layer(device: str, dtype: torch.dtype, heads: int = 16, kv_heads: int = 4, head_dim: int = 64):
    """One packed row: 300 shared tokens, then answers of 200, 150 and 180 tokens (K = 2 further answers)."""
    parts = torch.tensor([0] * 300 + [1] * 200 + [2] * 150 + [3] * 180, device=device)
    segments = PairSegments.build(torch.tensor([parts.numel()]), parts)
    shape = (1, heads, parts.numel(), head_dim)
    query = torch.randn(shape, device=device, dtype=dtype)
    key = torch.randn(1, kv_heads, parts.numel(), head_dim, device=device, dtype=dtype)
    return query, key, torch.randn_like(key), segments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16", choices=("float32", "bfloat16", "float16"))
    args = parser.parse_args()
    query, key, value, segments = packed_layer(args.device, getattr(torch, args.dtype))
    reference = None
    for name, kernel in KERNELS.items():
        try:
            with sdpa_kernel([kernel]):
                output = segment_attention(query, key, value, segments, None, 0.0)
        except RuntimeError as exc:
            print(f"{name:10s} refused: {str(exc).splitlines()[0][:100]}")
            continue
        reference = output if reference is None else reference
        gap = (output.float() - reference.float()).abs().max().item()
        print(f"{name:10s} runs every call (max difference to the first kernel that ran: {gap:.1e})")


if __name__ == "__main__":
    main()

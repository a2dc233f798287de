"""Print the conformance matrix: per model family and layout, how far align's completion log-probs and LoRA
gradients are from plain Hugging Face forward passes of each sequence run alone (log-probs: max absolute difference in
nats; gradients: max absolute difference ÷ the largest reference gradient entry).

    python scripts/conformance_matrix.py                       # fp32 on the CPU (what the tests assert, 1e-5)
    python scripts/conformance_matrix.py --device cuda --dtype bfloat16   # on a GPU (scripts/gpu_check.sh)

The families are tests/training/conformance.py's rows; the layouts are those align would choose, plus padded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from align.training.families import router_aux_loss_coef  # noqa: E402
from align.training.layout import choose_layout  # noqa: E402
from tests.training.conformance import (  # noqa: E402
    FAMILIES,
    VOCAB,
    align_logps,
    build_family,
    lora,
    plain_logps,
    tokenised_rows,
    trl_sequences,
)


def _measure(name: str, k: int, device: str, dtype: torch.dtype) -> list[tuple[str, str, float, float]]:
    rows = tokenised_rows(k)
    sequences = trl_sequences(rows)
    weights = torch.linspace(-1.0, 1.5, len(sequences), device=device)
    reference = lora(build_family(name, VOCAB)).to(device=device, dtype=dtype)
    expected = plain_logps(reference, sequences)
    (expected * weights).sum().backward()
    model = build_family(name, VOCAB)
    chosen = choose_layout(model, "packed", router_aux_loss_coef(model, None))
    results = []
    for layout in sorted({chosen.batch_layout, "padded"}):
        policy = lora(build_family(name, VOCAB)).to(device=device, dtype=dtype)
        got = align_logps(policy, rows, layout)
        (got * weights).sum().backward()
        pairs = [(p.grad, q.grad) for p, q in zip(policy.parameters(), reference.parameters(), strict=True)]
        pairs = [(p.float(), q.float()) for p, q in pairs if q is not None]
        # Relative to the largest reference gradient entry, so bf16 and fp32 tolerances read alike.
        scale = max(q.abs().max().item() for _, q in pairs)
        gradient_gap = max((p - q).abs().max().item() for p, q in pairs) / scale
        results.append((layout, chosen.why or "", (got - expected).abs().max().item(), gradient_gap))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--k", type=int, default=3, help="rejected answers per row (3 exercises every attention call)")
    parser.add_argument("--max-logp-diff", type=float, help="exit 1 if a log-prob sum differs by more (nats)")
    parser.add_argument(
        "--max-grad-diff", type=float, help="exit 1 if a LoRA gradient entry differs by more (relative)"
    )
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    print(f"{args.device}, {args.dtype}, K={args.k} rejected answers per row")
    print("| family | layout | max log-prob diff (nats) | max LoRA gradient diff (÷ largest entry) | why not packed |")
    print("|---|---|---|---|---|")
    failed = []
    for name in FAMILIES:
        for layout, why, logp_gap, gradient_gap in _measure(name, args.k, args.device, dtype):
            print(f"| {name} | {layout} | {logp_gap:.1e} | {gradient_gap:.1e} | {why} |")
            if (args.max_logp_diff is not None and logp_gap > args.max_logp_diff) or (
                args.max_grad_diff is not None and gradient_gap > args.max_grad_diff
            ):
                failed.append(f"{name}/{layout}")
    if failed:
        sys.exit(f"over the tolerance: {', '.join(failed)}")


if __name__ == "__main__":
    main()

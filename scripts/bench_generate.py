#!/usr/bin/env python3
"""Generation benchmark: plain `model.generate` against align's generation, same model, adapter and prompts, greedy.

Both systems answer the same prompts with the same LoRA-wrapped model (r 16, alpha 32, all linear layers, B drawn at
std 0.01 so the adapter is not a no-op). `generate` gets the prompts in file order, `--batch-size` at a time, left
padded, the adapter unfolded — what a caller of `model.generate` writes. align gets them through
`generate_token_ids` (what `generate_answers` and the probes run) with its own batch (a memory budget; one batch for
the default 16 prompts) unless `--align-batch-size` says. Every answer must be the same token for token;
a difference is printed and the script exits 1. Each round prints one JSON object per system:

    answers_per_s     prompts answered ÷ wall seconds
    tokens_per_s      new tokens (up to and including the end-of-turn token, or the cap) ÷ wall seconds

then one object with the per-round ratios (align ÷ generate) and their medians. `--repeats R` runs R rounds of
generate-then-align: on a shared machine only runs measured back to back compare.

    python scripts/bench_generate.py                             # SmolLM2-135M, 16 held-out prompts, 160 tokens
    python scripts/bench_generate.py --model tiny-llama --count 4 --max-new-tokens 8    # a quick run
    python scripts/bench_generate.py --batch-size 16 --generate-cache static --compile  # generate's own speed-ups
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="short name or folder")
    parser.add_argument("--prompts", default=str(ROOT / "data" / "concise" / "heldout_prompts.jsonl"))
    parser.add_argument("--count", type=int, default=16, help="first N prompts of --prompts")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=8, help="plain generate's batch")
    parser.add_argument(
        "--align-batch-size", type=int, default=None, help="align's batch (default: align's own, a memory budget)"
    )
    parser.add_argument("--lora-rank", type=int, default=16, help="0: no adapter")
    parser.add_argument(
        "--dtype", default="float32", help="model dtype: float32 (default), bfloat16, or auto (bfloat16 on a GPU)"
    )
    parser.add_argument(
        "--generate-cache", choices=("dynamic", "static"), default=None, help="plain generate's cache_implementation"
    )
    parser.add_argument(
        "--compile", action="store_true", help="plain generate runs the model's forward under torch.compile"
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--output", help="also write the JSON lines here")
    return parser.parse_args(argv)


def build_model(args):
    import torch

    from align.models import load_model, load_tokenizer

    tokenizer = load_tokenizer(args.model, False)
    model = load_model(args.model, args.dtype, None, False)
    if torch.cuda.is_available():
        model = model.to("cuda")
    if args.lora_rank:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=args.lora_rank, lora_alpha=2 * args.lora_rank, target_modules="all-linear")
        torch.manual_seed(0)  # peft draws A from the global generator: seeded, every run answers the same
        model = get_peft_model(model, config)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.01)
    model.eval()
    return model, tokenizer


def cut_at_stop(ids: list[int], stop_ids: set[int]) -> list[int]:
    """`ids` up to and including the first stop token (generate pads finished rows with it)."""
    stop = next((k for k, token in enumerate(ids) if token in stop_ids), None)
    return ids if stop is None else ids[: stop + 1]


def plain_generate(model, tokenizer, prompts, args) -> list[list[int]]:
    import torch

    from align.evaluation.generation import chat_inputs

    stop_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    answers = []
    cache = {"cache_implementation": args.generate_cache} if args.generate_cache else {}
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if args.compile:
        # Compiled once per process (the first round pays the compile); align's loop never runs it.
        args.compiled_forward = getattr(args, "compiled_forward", None) or torch.compile(inner.forward, dynamic=False)
        inner.forward = args.compiled_forward
    try:
        with torch.no_grad():
            for start in range(0, len(prompts), args.batch_size):
                inputs = chat_inputs(tokenizer, prompts[start : start + args.batch_size]).to(model.device)
                output = model.generate(
                    **inputs,
                    max_new_tokens=args.max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                    **cache,
                )
                answers += [cut_at_stop(row, stop_ids) for row in output[:, inputs["input_ids"].shape[1] :].tolist()]
    finally:
        if args.compile:
            del inner.forward  # the class's own forward again
    return answers


def align_generate(model, tokenizer, prompts, args) -> list[list[int]]:
    from align.evaluation.generation import generate_token_ids

    return generate_token_ids(model, tokenizer, prompts, args.max_new_tokens, args.align_batch_size)


def align_rows(model, tokenizer, prompts, args) -> int:
    """The batch align chose under its memory budget: rows for the longest prompt plus the cap, at most all."""
    from align.evaluation.generation import chat_texts, rows_in_budget

    longest = max(
        len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in chat_texts(tokenizer, prompts)
    )
    return min(len(prompts), rows_in_budget(model, longest + args.max_new_tokens))


def timed(system: str, run, model, tokenizer, prompts, args) -> tuple[dict, list[list[int]]]:
    start = time.perf_counter()
    answers = run(model, tokenizer, prompts, args)
    seconds = time.perf_counter() - start
    tokens = sum(len(answer) for answer in answers)
    result = {
        "system": system,
        "seconds": round(seconds, 2),
        "answers_per_s": round(len(prompts) / seconds, 4),
        "tokens_per_s": round(tokens / seconds, 2),
        "new_tokens": tokens,
    }
    return result, answers


def mismatches(reference: list[list[int]], ours: list[list[int]], prompts: list[str]) -> list[str]:
    lines = []
    for k, (a, b) in enumerate(zip(reference, ours, strict=True)):
        if a != b:
            first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            lines.append(
                f"prompt {k} ({prompts[k][:40]!r}): differs at new token {first}: {a[first:][:8]} vs {b[first:][:8]}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    import torch

    from align.data.jsonl import read_jsonl

    args = parse_args(argv)
    prompts = [row["prompt"] for _, row in read_jsonl(args.prompts)][: args.count]
    model, tokenizer = build_model(args)
    setting = {
        "model": args.model,
        "prompts": len(prompts),
        "max_new_tokens": args.max_new_tokens,
        "lora_rank": args.lora_rank,
        "threads": torch.get_num_threads(),
    }
    lines, ratios = [], {"answers_per_s": [], "tokens_per_s": []}
    for round_number in range(args.repeats):
        plain, reference = timed("generate", plain_generate, model, tokenizer, prompts, args)
        ours, answers = timed("align", align_generate, model, tokenizer, prompts, args)
        plain.update(
            setting,
            round=round_number,
            batch_size=args.batch_size,
            cache=args.generate_cache or "dynamic",
            compiled=args.compile,
        )
        ours.update(
            setting, round=round_number, batch_size=args.align_batch_size or align_rows(model, tokenizer, prompts, args)
        )
        differences = mismatches(reference, answers, prompts)
        for line in differences:
            print(line, file=sys.stderr)
        lines += [plain, ours]
        print(json.dumps(plain), json.dumps(ours), sep="\n", flush=True)
        if differences:
            print(f"{len(differences)} of {len(prompts)} answers differ from generate's", file=sys.stderr)
            return 1
        for key in ratios:
            ratios[key].append(round(ours[key] / plain[key], 3))
    summary = {"system": "align/generate", "identical_answers": True, **{f"{k}_ratio": v for k, v in ratios.items()}}
    summary.update({f"median_{k}_ratio": statistics.median(v) for k, v in ratios.items()})
    lines.append(summary)
    print(json.dumps(summary))
    if args.output:
        Path(args.output).write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

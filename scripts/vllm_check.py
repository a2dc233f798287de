"""The vLLM sampling backend on a lent GPU (`scripts/gpu_check.sh` step 4; never in CI): the same LoRA policy
answers the held-out prompts greedily through vLLM (`data.generate.backend: vllm`) and through align's decode loop,
and samples them through both; prints the share of identical greedy answers, where they first differ, and the
answers/s of each.

Usage: python scripts/vllm_check.py [--model M] [--count N] [--samples S] [--max-new-tokens T] [--output F]
Without vLLM or a CUDA device it says so and exits 0: there is nothing to check on such a machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _policy(name: str):
    import torch
    from peft import LoraConfig, get_peft_model

    from align.models import load_model, load_tokenizer

    model = load_model(name, "auto").to("cuda")
    torch.manual_seed(0)
    config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    return get_peft_model(model, config).eval(), load_tokenizer(name)


def _first_difference(a: str, b: str) -> int | None:
    """The first character at which two answers differ; None when they are the same."""
    if a == b:
        return None
    return next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--count", type=int, default=48)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--output", default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    from align.evaluation.generation import SamplingSettings, generate_answers, sample_answers
    from align.on_policy.prompts import load_prompt_rows
    from align.on_policy.vllm_sampling import sample_with_vllm, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        print(f"vllm_check: skipped: {reason}")
        return 0
    policy, tokenizer = _policy(args.model)
    rows = load_prompt_rows(str(REPO / "data/concise/heldout_prompts.jsonl"), {}, args.count)
    prompts = [row.prompt for row in rows]
    greedy = SamplingSettings(samples=args.samples, max_new_tokens=args.max_new_tokens, seed=0, greedy=True)
    figures = {"model": args.model, "prompts": len(prompts), "samples": args.samples}
    started = time.perf_counter()
    through_vllm = sample_with_vllm(policy, tokenizer, prompts, greedy, {})
    figures["vllm_seconds"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    loop_greedy = generate_answers(policy, tokenizer, prompts, args.max_new_tokens)
    figures["align_greedy_seconds"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    sample_answers(policy, tokenizer, prompts, greedy)
    figures["align_greedy_and_samples_seconds"] = round(time.perf_counter() - started, 2)
    pairs = [(group[0].text, loop.text) for group, loop in zip(through_vllm, loop_greedy, strict=True)]
    figures["greedy_identical"] = sum(a == b for a, b in pairs) / len(pairs)
    figures["first_differing_char"] = [_first_difference(a, b) for a, b in pairs]
    figures["vllm_answers_per_s"] = round(len(prompts) * (args.samples + 1) / figures["vllm_seconds"], 2)
    figures["align_answers_per_s"] = round(
        len(prompts) * (args.samples + 1) / figures["align_greedy_and_samples_seconds"], 2
    )
    print(json.dumps(figures))
    if args.output:
        Path(args.output).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Time on-policy sampling: align's `sample_answers` (what `data.generate` runs) on the first N training prompts.

Prints one JSON object: seconds, answers, new tokens and each prompt's greedy answer length. Run it once per code
version, back to back, to compare (the answers themselves depend on the sampler's random numbers).

    python scripts/time_sampling.py                       # 16 prompts, 3 samples + greedy, 128 tokens, one batch
    python scripts/time_sampling.py --count 48 --batch-size 0   # 48 prompts, batch left to the memory budget
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="short name or folder")
    parser.add_argument("--prompts", default=str(ROOT / "data" / "concise" / "train_prompts.jsonl"))
    parser.add_argument("--count", type=int, default=16, help="first N prompts of --prompts")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--no-greedy", action="store_true", help="samples only, no greedy answer per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16, help="prompts per batch; 0: align's memory budget")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from align.evaluation.compare import load_prompts
    from align.evaluation.generation import SamplingSettings, sample_answers
    from align.models import load_model, load_tokenizer

    prompts = [row["prompt"] for row in load_prompts(args.prompts)][: args.count]
    tokenizer, model = load_tokenizer(args.model), load_model(args.model)
    settings = SamplingSettings(
        samples=args.samples,
        temperature=0.7,
        top_p=0.95,
        max_new_tokens=args.max_new_tokens,
        seed=1,
        greedy=not args.no_greedy,
    )
    start = time.perf_counter()
    answers = sample_answers(model, tokenizer, prompts, settings, batch_size=args.batch_size or None)
    seconds = time.perf_counter() - start
    result = {
        "seconds": round(seconds, 1),
        "prompts": len(prompts),
        "answers": sum(map(len, answers)),
        "new_tokens": sum(a.tokens for row in answers for a in row),
        "greedy_tokens": [row[0].tokens for row in answers] if settings.greedy else [],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Training benchmark: stock trl `DPOTrainer` against align's `ContrastiveTrainer` (`--mode sft`: stock trl
`SFTTrainer` against align's `FastSftTrainer`), same model, rows, LoRA, batches.

Each system trains in its own subprocess (so peak memory is its own) and prints one JSON object:

    real_tokens_per_s    non-pad prompt+completion tokens of the timed steps ÷ their wall time (first steps skipped)
    peak_memory_gib      peak resident memory of the process (CPU) or peak allocated CUDA memory (GPU), GiB
    padded_per_real      tokens in the padded batches ÷ real tokens
    mfu                  model FLOP utilisation: real tokens/s × 6 × parameters ÷ the matmul peak measured here
    losses               the logged training loss of every step (same batches for both systems)

then one object with the ratios (align ÷ trl) and the largest per-step loss difference.

    python scripts/bench_train.py                                  # SmolLM2-135M, 6 steps, batch 8, max length 256
    python scripts/bench_train.py --model tiny-llama --steps 3     # a quick run
    python scripts/bench_train.py --mode sft --steps 8             # SFT: the demo's rows, batch 8, max length 192
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYSTEMS = ("trl", "align")


def matmul_peak_flops(device: str, dtype_name: str, seconds: float = 1.0) -> float:
    """Sustained FLOP/s of a square matmul on this device (2·n³ per product), the ceiling MFU is measured against."""
    import torch

    dtype = getattr(torch, dtype_name)
    n = 2048 if device == "cuda" else 1024
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        count += 1
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * count / (time.perf_counter() - start)


class CountingCollator:
    """Wraps a collator: records, per batch in order, the real tokens (the prompt + answer tokens of every
    sequence, as trl's padded layout holds them without padding) and the tokens the model actually runs (the padded
    tensor, or the packed row, where a row's prompt runs once)."""

    def __init__(self, collator):
        self.collator, self.real, self.padded = collator, [], []

    def __call__(self, examples):
        from align.training.packed_batch import PackedBatch, is_packed

        batch = self.collator(examples)
        if is_packed(batch):  # align's packed layout
            packed = PackedBatch.from_inputs(batch)
            self.real.append(int(packed.sequence_lengths.sum()))
            self.padded.append(int(packed.input_ids.numel()))
        else:  # padded: one mask, or (trl's CPOTrainer) one per answer, each covering prompt + answer
            masks = (
                [batch["attention_mask"]]
                if "attention_mask" in batch
                else [batch[f"{answer}_attention_mask"] for answer in ("chosen", "rejected")]
            )
            self.real.append(sum(int(mask.sum()) for mask in masks))
            self.padded.append(sum(int(mask.numel()) for mask in masks))
        return batch


def _rows(count: int, seed: int, mode: str) -> list:
    from align.data import load_completion_rows, load_preference_rows

    if mode == "sft":  # the demo's SFT warm-up rows, in file order as the demo takes them
        return load_completion_rows(ROOT / "data" / "concise" / "sft.jsonl")[:count]
    rows = load_preference_rows(ROOT / "data" / "concise" / "train.jsonl")
    random.Random(seed).shuffle(rows)
    return rows[:count]


def _step_times():
    from transformers import TrainerCallback

    class StepTimes(TrainerCallback):
        def __init__(self):
            self.times, self._start = [], None

        def on_step_begin(self, args, state, control, **kwargs):
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter() - self._start)

    return StepTimes()


# The loss each system trains with: trl's DPOTrainer (sigmoid = DPO) and, reference-free, trl's CPOTrainer with
# SimPO (cpo_alpha 0: no NLL term, simpo_gamma = align's γ), against align's registered losses with the same values.
LOSS_PARAMS = {"dpo": {"beta": 0.1}, "simpo": {"beta": 2.0, "gamma": 1.0}}


def _trl_simpo_trainer(common: dict):
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    dpo = common["args"]
    keep = (
        "output_dir",
        "per_device_train_batch_size",
        "max_length",
        "max_steps",
        "learning_rate",
        "logging_steps",
        "save_strategy",
        "train_sampling_strategy",
        "seed",
        "report_to",
        "bf16",
        "use_cpu",
    )
    config = CPOConfig(
        **{key: getattr(dpo, key) for key in keep},
        loss_type="simpo",
        beta=2.0,
        simpo_gamma=1.0,
        cpo_alpha=0.0,
        remove_unused_columns=False,
    )
    return CPOTrainer(**{**common, "args": config})


def _trainer(
    system: str,
    model,
    tokenizer,
    dataset,
    config,
    peft: dict,
    layout: str,
    loss: str,
    micro_batch_tokens: int | None = None,
    mode: str = "preference",
):
    from trl import DPOTrainer, SFTTrainer

    from align.losses import LossTerm
    from align.recipe.trl_configs import make_lora_config
    from align.training.sft_trainer import FastSftTrainer
    from align.training.trainer import ContrastiveTrainer

    common = dict(
        model=model, args=config, train_dataset=dataset, processing_class=tokenizer, peft_config=make_lora_config(peft)
    )
    if mode == "sft":
        if system == "trl":
            return SFTTrainer(**common)
        split = micro_batch_tokens if layout == "packed" else None
        return FastSftTrainer(batch_layout=layout, micro_batch_tokens=split, **common)
    if system == "trl":
        return DPOTrainer(**common) if loss == "dpo" else _trl_simpo_trainer(common)
    return ContrastiveTrainer(
        loss_terms=[LossTerm(loss, 1.0, LOSS_PARAMS[loss])],
        batch_layout=layout,
        micro_batch_tokens=micro_batch_tokens if layout == "packed" else None,
        **common,
    )


def run_child(args) -> dict:
    """Train `args.child` for `args.steps` steps and measure it (runs in its own process)."""
    import torch
    from datasets import Dataset

    from align.models import load_model, load_tokenizer
    from align.recipe.trl_configs import make_trainer_config
    from align.runtime import keep_freed_memory

    torch.set_num_threads(args.threads or torch.get_num_threads())
    # What `align train` does at start-up; trl's scripts leave glibc's defaults.
    tuned = args.child == "align" and not args.glibc_defaults and keep_freed_memory()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer, model = load_tokenizer(args.model), load_model(args.model)
    rows = _rows(args.steps * args.batch_size, args.seed, args.mode)
    dataset = Dataset.from_list([row.to_conversational() for row in rows])
    training = {
        "per_device_train_batch_size": args.batch_size,
        "max_length": args.max_length,
        "max_steps": args.steps,
        "learning_rate": 1e-4,
        "logging_steps": 1,
        "save_strategy": "no",
        "train_sampling_strategy": args.sampling,
    } | ({"beta": 0.1} if args.mode == "preference" else {})
    with tempfile.TemporaryDirectory() as out:
        config = make_trainer_config(args.mode, training, output_dir=out, seed=args.seed, report_to="none")
        peft = {"r": 16, "lora_alpha": 32, "target_modules": "all-linear"}
        trainer = _trainer(
            args.child,
            model,
            tokenizer,
            dataset,
            config,
            peft,
            args.layout,
            args.loss,
            args.micro_batch_tokens or None,
            args.mode,
        )
        counter, times = CountingCollator(trainer.data_collator), _step_times()
        trainer.data_collator = counter
        trainer.add_callback(times)
        trainer.train()
    timed = slice(args.warmup_steps, None)
    real, seconds = sum(counter.real[: args.steps][timed]), sum(times.times[timed])
    params = sum(p.numel() for p in model.parameters())
    peak = (
        torch.cuda.max_memory_allocated()
        if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    tokens_per_s = real / seconds if seconds else float("nan")
    flops = matmul_peak_flops(device, "bfloat16" if device == "cuda" else "float32")
    return {
        "system": args.child,
        "mode": args.mode,
        "loss": args.loss if args.mode == "preference" else "sft",
        "layout": trainer.layout.batch_layout if hasattr(trainer, "layout") else "padded",
        "keep_freed_memory": tuned,
        "micro_batch_tokens": (args.micro_batch_tokens or None) if args.child == "align" else None,
        "sampling": args.sampling,
        "model": args.model,
        "device": device,
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "timed_steps": len(times.times[timed]),
        "batch_pairs": args.batch_size,
        "max_length": args.max_length,
        "real_tokens_per_s": round(tokens_per_s, 1),
        "step_seconds": [round(t, 3) for t in times.times],
        "peak_memory_gib": round(peak / 2**30, 2),
        "padded_per_real": round(sum(counter.padded[: args.steps]) / sum(counter.real[: args.steps]), 3),
        "parameters": params,
        "matmul_peak_gflops": round(flops / 1e9, 1),
        "mfu": round(tokens_per_s * 6 * params / flops, 4),
        "losses": [round(e["loss"], 5) for e in trainer.state.log_history if "loss" in e and "train_loss" not in e],
    }


def _ratios(results: dict) -> dict:
    """align ÷ trl. With repeats, tokens/s is each system's median, `per_round` the ratio of each round (the two
    systems measured back to back), `mfu_per_round` the same normalised by each run's own matmul peak."""
    trl, ours = results["trl"], results["align"]
    diffs = [abs(a - b) for a, b in zip(trl[0]["losses"], ours[0]["losses"], strict=False)]
    return {
        "system": "align/trl",
        "real_tokens_per_s": round(_median(ours) / _median(trl), 2),
        "per_round": [
            round(a["real_tokens_per_s"] / t["real_tokens_per_s"], 2) for t, a in zip(trl, ours, strict=False)
        ],
        # tokens/s per FLOP/s of the matmul peak each run measured at its end: robust to the machine's drift
        "mfu_per_round": [round(a["mfu"] / t["mfu"], 2) for t, a in zip(trl, ours, strict=False)],
        "peak_memory": round(ours[0]["peak_memory_gib"] / trl[0]["peak_memory_gib"], 2),
        "padded_per_real": round(ours[0]["padded_per_real"] / trl[0]["padded_per_real"], 3),
        "max_step_loss_difference": round(max(diffs), 5) if diffs else None,
    }


def _median(runs: list[dict]) -> float:
    return statistics.median(run["real_tokens_per_s"] for run in runs)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="short name or folder (tiny-llama: quick)")
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per system (default 6)")
    parser.add_argument("--warmup-steps", type=int, default=1, help="first steps left out of the timing")
    parser.add_argument(
        "--mode",
        choices=("preference", "sft"),
        default="preference",
        help="preference: trl DPOTrainer/CPOTrainer vs align; sft: trl SFTTrainer vs align on data/concise/sft.jsonl",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="pairs (sft: rows) per step (default 8)")
    parser.add_argument(
        "--max-length", type=int, help="prompt + answer tokens (default 256; sft: 192, the demo's warm-up)"
    )
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated: trl,align")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument(
        "--glibc-defaults",
        action="store_true",
        help="align without `align train`'s allocator setting (align.runtime.keep_freed_memory)",
    )
    parser.add_argument(
        "--loss",
        choices=sorted(LOSS_PARAMS),
        default="dpo",
        help="dpo (trl DPOTrainer) or simpo, reference-free (trl CPOTrainer loss_type=simpo)",
    )
    parser.add_argument("--layout", choices=("packed", "padded"), default="packed", help="align's batch layout")
    parser.add_argument(
        "--micro-batch-tokens",
        type=int,
        default=1024,
        help="align, packed: packed tokens per forward/backward pass (0: the whole batch at once)",
    )
    parser.add_argument(
        "--sampling",
        choices=("sequential", "group_by_length"),
        default="sequential",
        help="batch order, both systems (group_by_length: transformers' length-grouped sampler)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="rounds of trl-then-align runs; ratios from medians (a shared machine drifts)",
    )
    parser.add_argument("--output", help="also write the JSON objects here, one per line")
    parser.add_argument("--child", choices=SYSTEMS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.max_length is None:
        args.max_length = 192 if args.mode == "sft" else 256
    if args.child:
        print(json.dumps(run_child(args)))
        return 0
    results: dict[str, list[dict]] = {}
    lines = []
    for round_index in range(args.repeats):
        systems = args.systems.split(",")
        # Alternate the order each round, so a machine that speeds up or slows down favours neither system.
        for system in systems if round_index % 2 == 0 else systems[::-1]:
            cmd = [sys.executable, __file__, "--child", system] + [a for a in (argv or sys.argv[1:])]
            done = subprocess.run(
                cmd, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}
            )
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                return done.returncode
            results.setdefault(system, []).append(json.loads(done.stdout.strip().splitlines()[-1]))
            lines.append(json.dumps(results[system][-1]))
            print(lines[-1], flush=True)
    if set(SYSTEMS) <= set(results):
        lines.append(json.dumps(_ratios(results)))
        print(lines[-1])
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

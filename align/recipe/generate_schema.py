"""The typed configuration of a stage's on-policy rows (`data.generate`): what is sampled, how, and how the
answers become rows. Part of the recipe's schema (`schema.py`), which re-exports it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from align.recipe.doc_field import doc


@dataclass
class GenerateConfig:
    """On-policy rows: before training, the stage samples the current policy (the base model with the adapter carried
    so far) on `prompts`, scores every answer, and builds its rows from them with the pair builder: pairs for
    preference stages, labelled answers for kto stages, the best answer per prompt for sft stages. The rows and the
    builder's report are written to `OUTPUT/<stage>/generated.jsonl` (and `.report.json`); `--resume` reads them
    back instead of sampling again."""

    prompts: str = doc(
        "A JSONL file of prompts (relative to the recipe): `prompt`, optional `key_points` (phrases a complete "
        "answer contains, for key-point recall) and `reference` (a good answer, which sets the concise scorer's word "
        "budget and may join the candidates). Other column names map with `columns`."
    )
    columns: dict = doc(
        "Column mapping from align's names (`prompt`, `key_points`, `reference`) to the file's, e.g. "
        "`{reference: completion}`.",
        default_factory=dict,
    )
    max_prompts: int | None = doc("Use at most this many prompts (the first ones); unset = all.", default=None)
    samples: int = doc("Answers sampled per prompt (at least 2 for pairs).", default=4)
    temperature: float = doc("Sampling temperature (> 0).", default=0.8)
    top_p: float = doc(
        "Nucleus sampling: keep the smallest set of tokens with this probability mass (1.0 = off).", default=0.95
    )
    max_new_tokens: int = doc(
        "Length cap of a sampled answer, in tokens. An answer cut at the cap is never a chosen answer.", default=160
    )
    batch_size: int | None = doc(
        "Prompts per generation batch (each with all its samples and its greedy answer). Unset: as many as a 2 GiB "
        "key/value-cache budget holds — on a CPU a decode step costs little more for more rows (SmolLM2-135M, 2 "
        "cores: 48 prompts × 4 answers in one batch took 103 s, in batches of 16 prompts 133 s).",
        default=None,
    )
    backend: Literal["align", "vllm"] = doc(
        "What samples the answers: `align` (align's decode loop, on any device) or `vllm` (vLLM's engine on a CUDA "
        "GPU, when vLLM is installed: the policy's weights, the adapter folded in exactly, are written to a "
        "temporary folder that vLLM loads; every process samples its share with its own engine). Greedy answers "
        "(`include_greedy`) are vLLM's greedy answers then, not the decode loop's.",
        default="align",
    )
    vllm: dict = doc(
        "Keyword arguments for vLLM's engine (`vllm.LLM`, i.e. its `EngineArgs`), with `backend: vllm` only, e.g. "
        "`{gpu_memory_utilization: 0.3, enforce_eager: true}`. align sets `model`, `tokenizer`, `seed` and `dtype` "
        "itself; it defaults `gpu_memory_utilization` to 0.3 (the policy is training on the same GPU), "
        "`max_num_batched_tokens` to 4096 (as trl does) and `max_model_len` to the longest prompt plus "
        "`max_new_tokens`. Under several processes each runs one engine on its own GPU, so `tensor_parallel_size` "
        "and the like are refused there. Names are checked against vLLM's where it is installed.",
        default_factory=dict,
    )
    rounds: int = doc(
        "Sample, build and train this many times, each round sampling the adapter the previous round trained "
        "(iterative on-policy training). Round r < R runs as stage `<name>-round<r>` with its own output folder; "
        "the last round is the stage itself, and only it answers probes and checks gates.",
        default=1,
    )
    scorers: dict = doc(
        "Scorers and their weights, e.g. `{concise: 1.0}` (the default: align's deterministic concise, actionable, "
        "complete, not-repetitive score in [0, 1]) or `{concise: 1.0, reward_model: 0.5}` (each standardised within a "
        "prompt's answers before weighting). `align validate --explain stages.data.generate.scorers` lists them.",
        default_factory=lambda: {"concise": 1.0},
    )
    reward_model: str | None = doc(
        "The `reward_model` scorer's model: a local folder or Hub id of a sequence-classification model with one "
        "output.",
        default=None,
    )
    min_margin: float = doc(
        "Least score difference between a pair's chosen and rejected answers (in the score's units).", default=0.05
    )
    min_chosen_score: float = doc(
        "The quality bar, in concise-score units [0, 1]: an answer below it (or looping, or cut at the length cap) "
        "is never chosen; in kto stages it is the undesirable label.",
        default=0.5,
    )
    include_reference: bool = doc(
        "Let each prompt's `reference` answer join its sampled answers as a candidate.", default=True
    )
    include_greedy: bool = doc(
        "Let each prompt's greedy answer (the policy's most likely answer: what probes and `align eval` read, and "
        "where a small model's loops show) join its sampled answers as a candidate, so a looping greedy answer can "
        "be a rejected one. Costs one more answer per prompt.",
        default=False,
    )
    loop_pairs: bool = doc(
        "Preference stages: each sampled answer that loops also gives a pair, its loop-free start (cut before the "
        "first repeated sentence or list item) as chosen against the whole looping answer as rejected, at most "
        "`max_pairs_per_prompt` per prompt, beside the builder's pairs: the two share every token up to the loop, so "
        "the loss teaches the policy to stop there (kind `loop`). With `include_greedy`, the loops a small model "
        "shows under greedy decoding are among them.",
        default=False,
    )
    max_pairs_per_prompt: int | None = doc(
        "Most pairs one prompt gives (preference stages with `negatives: 1`); unset = every usable pair.", default=2
    )
    negatives: int = doc(
        "Preference stages: rejected answers per row (K > 1: one row per prompt, its best answer against K).",
        default=1,
    )

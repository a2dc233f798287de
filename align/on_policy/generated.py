"""A stage's on-policy rows: sample the current policy, score, build the kind's rows, write them with a report to
`OUTPUT/<stage>/generated.jsonl`, and hand them to row selection as one more source. A resumed run reads the file
back instead of sampling again."""

from __future__ import annotations

import json
import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from align.data.scoring import score_answer
from align.errors import AlignError
from align.evaluation.generation import SamplingSettings
from align.on_policy.candidates import candidates_of, rank_candidates
from align.on_policy.prompts import PromptRow, load_prompt_rows
from align.on_policy.sampling import SamplingBackend, sample_all
from align.outputs import RunOutputs, atomic_write_text
from align.recipe.schema import GenerateConfig, SourceConfig
from align.runtime import process_state
from align.scorers import ScorerSet, ScorerSettings
from align.stages import StageKind, stage_kind

logger = logging.getLogger(__name__)

GENERATED_FILE = "generated.jsonl"
REPORT_FILE = "generated.report.json"


@dataclass(frozen=True)
class GeneratedRows:
    """A stage's on-policy rows: the source they are read from (`generated.jsonl`, in the kind's format), the
    report of how they were made (summary.json's `generated`), and whether a resumed run reused them."""

    source: SourceConfig
    report: dict
    reused: bool


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def _sampling_figures(prompts: list[PromptRow], answers, candidates, settings: GenerateConfig) -> dict:
    """What the policy's sampled answers were like: how long, how often looping or cut, how many clear the bar;
    with `include_greedy`, how often the greedy answers (each prompt's first) loop or are cut."""
    flat = [a for group in answers for a in group]
    sampled = [c for group in candidates for c in group if not c.reference]
    greedy = {}
    if settings.include_greedy:
        firsts = [(row, group[0]) for row, group in zip(prompts, answers, strict=True)]
        greedy = {
            "greedy_loop_rate": _mean([float(score_answer(row.prompt, a.text).loops) for row, a in firsts]),
            "greedy_cut_rate": _mean([float(a.truncated) for _, a in firsts]),
        }
    return greedy | {
        "answers_sampled": len(flat),
        "distinct_answers": len(sampled),
        "mean_answer_tokens": _mean([a.tokens for a in flat]),
        "cut_rate": _mean([float(a.truncated) for a in flat]),
        "loop_rate": _mean([float(c.loops) for c in sampled]),
        "mean_concise_score": _mean([c.score for c in sampled]),
        "clear_bar_rate": _mean([float(c.clears(settings.min_chosen_score)) for c in sampled]),
    }


def generate_rows(
    model,
    tokenizer,
    kind: StageKind,
    settings: GenerateConfig,
    prompts: list[PromptRow],
    seed: int,
    label: str = "sampling answers",
) -> tuple[list[dict], dict]:
    """Sample `settings.samples` answers per prompt from `model` (shared across processes; progress labelled
    `label`), score them, and build `kind`'s rows; returns the rows and the report. Every process returns the same
    rows. No rows at all is an error that names why the candidates were dropped."""
    started = time.perf_counter()
    sampling = SamplingSettings(
        settings.samples,
        settings.temperature,
        settings.top_p,
        settings.max_new_tokens,
        seed,
        greedy=settings.include_greedy,
    )
    backend = SamplingBackend(settings.backend, settings.batch_size, dict(settings.vllm))
    sampled = sample_all(model, tokenizer, prompts, sampling, backend, label)
    candidates = [
        candidates_of(row, answers, settings.include_reference)
        for row, answers in zip(prompts, sampled.answers, strict=True)
    ]
    device = str(next(model.parameters()).device)  # a reward model runs where this process's policy runs
    scorers = ScorerSet(settings.scorers, ScorerSettings(reward_model=settings.reward_model, device=device))
    candidates = rank_candidates(prompts, candidates, scorers)
    rows, built = kind.rows_from_candidates(settings, prompts, candidates)
    report = {
        "prompts": len(prompts),
        "samples_per_prompt": settings.samples,
        "scorers": dict(scorers.weights),
        "rows": len(rows),
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 1),
        "sampling": _sampling_figures(prompts, sampled.answers, candidates, settings),
        "processes": [{"rank": rank, "prompts": share} for rank, share in enumerate(sampled.shares)],
        "built": built,
    }
    if not rows:
        dropped = built.get("dropped") or built
        reasons = ", ".join(f"{key} {value}" for key, value in dropped.items() if value) or "none"
        raise AlignError(
            f"no rows from {len(prompts)} prompts × {settings.samples} sampled answers (dropped: {reasons}); lower "
            "data.generate.min_chosen_score or min_margin, sample more answers, or add `reference` answers"
        )
    return rows, report


def generated_path(outputs: RunOutputs, stage: str) -> Path:
    return outputs.stage_dir(stage) / GENERATED_FILE


def _reuse(outputs: RunOutputs, stage) -> dict | None:
    """The report of rows an earlier (stopped) run of this stage generated, when both files are complete."""
    path, report_path = generated_path(outputs, stage.name), outputs.stage_dir(stage.name) / REPORT_FILE
    if not path.exists():
        return None
    try:
        return json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def generated_source(run, loaded, stage, model, seed: int) -> GeneratedRows:
    """The stage's on-policy rows as a source: generated now from `model` (the policy the stage starts from), or,
    when a resumed run finds them in the stage's folder, read back. The main process writes the files (the report
    first, the rows last, each atomically, so a rows file is never without its report); the others wait."""
    outputs, settings, state = run.outputs, stage.data.generate, process_state()
    kind = stage_kind(stage.kind)
    # Absolute: source paths are read relative to the recipe's folder, the output folder is relative to the cwd.
    path = generated_path(outputs, stage.name).absolute()
    source = SourceConfig(path=str(path), format=kind.generated_format)
    report = _reuse(outputs, stage)
    state.wait_for_everyone()  # every process decides on the same files before the main one may write new ones
    if report is not None:
        logger.warning("stage %s: reusing %d generated rows from %s", stage.name, report["rows"], source.path)
        return GeneratedRows(source, report, reused=True)
    prompts = load_prompt_rows(loaded.resolve_path(settings.prompts), settings.columns, settings.max_prompts)
    logger.info("stage %s: sampling %d answers to each of %d prompts", stage.name, settings.samples, len(prompts))
    rows, report = generate_rows(model, run.tokenizer, kind, settings, prompts, seed, f"{stage.name}: sampling answers")
    if state.is_main_process:
        outputs.stage_dir(stage.name).mkdir(parents=True, exist_ok=True)
        atomic_write_text(outputs.stage_dir(stage.name) / REPORT_FILE, json.dumps(report, indent=2) + "\n")
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        atomic_write_text(generated_path(outputs, stage.name), text)
    state.wait_for_everyone()
    logger.info("stage %s: %d rows from %d prompts", stage.name, len(rows), len(prompts))
    return GeneratedRows(source, report, reused=False)

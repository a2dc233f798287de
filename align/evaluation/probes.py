"""Probe prompts after a stage: the adapter's greedy answers against the base model's, scored by the concise
scorer. The base model's answers do not change during a run, so they are generated once and reused."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from align.evaluation.compare import answer_figures, answer_scores, load_prompts
from align.evaluation.generation import generate_answers
from align.progress import progress_bar


@dataclass
class BaseAnswers:
    """The base model's probe answers, keyed by (prompts file, prompt count, max_new_tokens)."""

    cache: dict[tuple, tuple[list, list]] = field(default_factory=dict)

    def get(self, key: tuple, make):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


def load_probe_prompts(path: str | Path, limit: int | None) -> list[dict]:
    rows = load_prompts(str(path))
    return rows[:limit] if limit is not None else rows


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("inf")


def probe_figures(tuned: dict, base: dict) -> dict[str, float]:
    """`probe/*` figures: the adapter's answers (`tuned`), the base model's, and the gate measures —
    `probe/mean_tokens_ratio` (tuned ÷ base mean response tokens), `probe/key_point_recall_drop` (base − tuned
    mean key-point recall, when the prompts carry key points) and `probe/loop_rate_increase` (tuned − base share of
    answers that loop, when both were scored)."""
    figures = {f"probe/{key}": value for key, value in tuned.items()}
    figures.update({f"probe/base_{key}": value for key, value in base.items()})
    figures["probe/mean_tokens_ratio"] = _ratio(tuned["mean_response_tokens"], base["mean_response_tokens"])
    if "key_point_recall" in tuned and "key_point_recall" in base:
        figures["probe/key_point_recall_drop"] = base["key_point_recall"] - tuned["key_point_recall"]
    if "loop_rate" in tuned and "loop_rate" in base:
        figures["probe/loop_rate_increase"] = tuned["loop_rate"] - base["loop_rate"]
    return figures


def run_probes(
    model,
    tokenizer,
    rows: list[dict],
    max_new_tokens: int,
    batch_size: int,
    base_answers: BaseAnswers,
    cache_key: tuple,
    label: str = "probes",
) -> tuple[dict[str, float], list[dict]]:
    """Answer `rows` with `model` (its adapter on) and the base model (adapters off, cached), the progress labelled
    `label`; return the `probe/*` figures and one record per prompt (`prompt`, `base`, `tuned`, token counts,
    key-point recall, whether each answer loops and whether it was cut at the length cap)."""
    prompts = [row["prompt"] for row in rows]
    gen = dict(max_new_tokens=max_new_tokens, batch_size=batch_size)
    with progress_bar(len(prompts), f"{label}: tuned answers") as bar:
        tuned = generate_answers(model, tokenizer, prompts, progress=bar, **gen)

    def base_run():
        with model.disable_adapter(), progress_bar(len(prompts), f"{label}: base answers") as bar:
            answers = generate_answers(model, tokenizer, prompts, progress=bar, **gen)
        return answers, answer_scores(rows, answers)

    base, base_scores = base_answers.get(cache_key, base_run)
    tuned_scores = answer_scores(rows, tuned)
    figures = probe_figures(answer_figures(tuned, tuned_scores), answer_figures(base, base_scores))
    records = [
        {
            "prompt": row["prompt"],
            **({"reference": row["reference"]} if "reference" in row else {}),
            "base": b.text,
            "tuned": t.text,
            "base_tokens": b.tokens,
            "tuned_tokens": t.tokens,
            "base_key_point_recall": bs.key_point_recall,
            "tuned_key_point_recall": ts.key_point_recall,
            "base_loops": bs.loops,
            "tuned_loops": ts.loops,
            "base_truncated": b.truncated,
            "tuned_truncated": t.truncated,
        }
        for row, b, t, bs, ts in zip(rows, base, tuned, base_scores, tuned_scores, strict=True)
    ]
    return figures, records

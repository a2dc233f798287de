"""`align eval`: answer held-out prompts with a tuned adapter (and the base model) and compare them."""

from __future__ import annotations

import json
import statistics
import textwrap
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from align.data.jsonl import read_jsonl
from align.data.scoring import AnswerScores, score_answer
from align.errors import AlignError, Problem
from align.progress import progress_bar

if TYPE_CHECKING:  # generation imports torch; `align eval` imports it only once it generates
    from align.evaluation.generation import GeneratedAnswer


def load_prompts(path: str) -> list[dict]:
    """Prompt rows `{"prompt", "key_points"?, "reference"?}`; a row without a prompt string is an error."""
    rows = []
    for line, obj in read_jsonl(path):
        if not isinstance(obj.get("prompt"), str) or not obj["prompt"].strip():
            raise AlignError(Problem(path, "needs a non-empty string", line, "prompt"))
        rows.append(obj)
    if not rows:
        raise AlignError(Problem(path, "has no prompts"))
    return rows


def answer_scores(rows: list[dict], answers: list[GeneratedAnswer]) -> list[AnswerScores]:
    """The scorer's figures for each answer, with its generated token count, whether generation cut it at the length
    cap, and the row's key points (if any)."""
    return [
        replace(
            score_answer(row["prompt"], a.text, row.get("key_points") or None), tokens=a.tokens, truncated=a.truncated
        )
        for row, a in zip(rows, answers, strict=True)
    ]


def answer_figures(answers: list[GeneratedAnswer], scores: list[AnswerScores] | None = None) -> dict[str, float]:
    """Figures over answers: mean/median response tokens, empty share, and the scorer's means (filler per 100
    words, restatement, actionability, key-point recall when the prompts carry key points), plus degeneration:
    `loop_rate` (share of answers that loop), `repeated_ngram_share` (mean share of repeated word trigrams) and
    `truncated_rate` (share of answers cut at the length cap)."""
    tokens = [a.tokens for a in answers]
    figures = {
        "mean_response_tokens": statistics.fmean(tokens),
        "median_response_tokens": float(statistics.median(tokens)),
        "empty_rate": sum(1 for a in answers if not a.text.strip()) / len(answers),
    }
    if scores:
        figures["filler_rate"] = statistics.fmean(s.filler_rate for s in scores)
        figures["restatement"] = statistics.fmean(s.restatement for s in scores)
        figures["actionability"] = statistics.fmean(s.actionability for s in scores)
        recalls = [s.key_point_recall for s in scores if s.key_point_recall is not None]
        if recalls:
            figures["key_point_recall"] = statistics.fmean(recalls)
        figures["loop_rate"] = sum(s.loops for s in scores) / len(scores)
        figures["repeated_ngram_share"] = statistics.fmean(s.repeated_ngram_share for s in scores)
        figures["truncated_rate"] = sum(bool(s.truncated) for s in scores) / len(scores)
    return figures


def _side_by_side(prompt: str, left: GeneratedAnswer, right: GeneratedAnswer, width: int = 58) -> str:
    def column(text: str) -> list[str]:
        return [line for para in text.splitlines() for line in (textwrap.wrap(para, width) or [""])]

    a, b = column(left.text), column(right.text)
    header = f"{'base (' + str(left.tokens) + ' tokens)':<{width}} | tuned ({right.tokens} tokens)"
    body = [f"{a[i] if i < len(a) else '':<{width}} | {b[i] if i < len(b) else ''}" for i in range(max(len(a), len(b)))]
    return "\n".join([f"PROMPT: {prompt}", header, "-" * (2 * width + 3), *body])


def run_eval(args) -> dict[str, Any]:
    """Generate, score, print, and write `--output` (see `align eval --help`)."""
    from align.models import load_model, load_tokenizer

    rows = load_prompts(args.prompts)
    if args.limit is not None:
        if args.limit <= 0:
            raise AlignError(Problem("--limit", f"{args.limit} must be a positive number of prompts"))
        rows = rows[: args.limit]
    prompts = [row["prompt"] for row in rows]
    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model)
    if args.adapter:
        from peft import PeftModel

        if not (Path(args.adapter) / "adapter_config.json").exists():
            raise AlignError(Problem(args.adapter, "not a PEFT adapter folder (no adapter_config.json)"))
        model = PeftModel.from_pretrained(model, args.adapter)
    gen = dict(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    clock = time.perf_counter()
    pair_figures = _pair_figures(args, model, tokenizer)
    seconds = {"pairs": round(time.perf_counter() - clock, 1)} if args.pairs else {}
    clock = time.perf_counter()
    tuned = generate_answers_labelled(model, tokenizer, prompts, "tuned" if args.adapter else "model", gen)
    seconds["tuned_answers"] = round(time.perf_counter() - clock, 1)
    tuned_scores = answer_scores(rows, tuned)
    result: dict[str, Any] = answer_figures(tuned, tuned_scores)
    base, base_scores = None, None
    if args.baseline and args.adapter:
        clock = time.perf_counter()
        with model.disable_adapter():
            base = generate_answers_labelled(model, tokenizer, prompts, "base", gen)
        seconds["base_answers"] = round(time.perf_counter() - clock, 1)
        base_scores = answer_scores(rows, base)
        result["baseline"] = answer_figures(base, base_scores)
    result.update(pair_figures)
    result["seconds"] = seconds
    result["examples"] = [_example(i, rows, tuned, tuned_scores, base, base_scores) for i in range(len(rows))]
    _print_report(result, prompts, tuned, base, args.show)
    print("time: " + ", ".join(f"{name.replace('_', ' ')} {value:.0f} s" for name, value in seconds.items()))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _pair_figures(args, model, tokenizer) -> dict[str, Any]:
    """`pair_accuracy` (and by kind) on `--pairs` (8 pairs per batch unless `--batch-size` says)."""
    if not args.pairs:
        return {}
    if not args.adapter and not args.reference_free:
        raise AlignError(Problem("--pairs", "the implicit reward needs --adapter (or pass --reference-free)"))
    from align.data import load_preference_rows
    from align.evaluation.pairs import pair_accuracy

    return pair_accuracy(
        model,
        tokenizer,
        load_preference_rows(args.pairs),
        reference_free=args.reference_free,
        batch_size=args.batch_size or 8,
    )


def _example(i, rows, tuned, tuned_scores, base, base_scores) -> dict[str, Any]:
    example = {
        "prompt": rows[i]["prompt"],
        "answer": tuned[i].text,
        "tokens": tuned[i].tokens,
        "scores": asdict(tuned_scores[i]),
    }
    if "reference" in rows[i]:
        example["reference"] = rows[i]["reference"]
    if base is not None:
        example.update(base_answer=base[i].text, base_tokens=base[i].tokens, base_scores=asdict(base_scores[i]))
    return example


def generate_answers_labelled(model, tokenizer, prompts, label, gen):
    from align.evaluation.generation import generate_answers

    with progress_bar(len(prompts), f"{label} answers") as bar:
        return generate_answers(model, tokenizer, prompts, progress=bar, **gen)


#: The scorer's figures `align eval` prints (base -> tuned with --baseline), with their labels.
_PRINTED_FIGURES = (
    ("filler_rate", "filler phrases / 100 words"),
    ("actionability", "actionability"),
    ("key_point_recall", "key-point recall"),
    ("loop_rate", "answers that loop"),
    ("repeated_ngram_share", "repeated word trigrams"),
    ("truncated_rate", "answers cut at the length cap"),
)


def _print_report(result, prompts, tuned, base, show: int) -> None:
    if base is not None:
        before, after = result["baseline"]["mean_response_tokens"], result["mean_response_tokens"]
        change = 100.0 * (after - before) / before if before else 0.0
        print(f"\nmean response tokens: base {before:.1f} -> tuned {after:.1f} ({change:+.0f}%)")
        print(
            f"median response tokens: base {result['baseline']['median_response_tokens']:.0f} -> "
            f"tuned {result['median_response_tokens']:.0f}"
        )
        for key, label in _PRINTED_FIGURES:
            if key in result:
                print(f"{label}: base {result['baseline'][key]:.2f} -> tuned {result[key]:.2f}")
        print()
        for i in range(min(show, len(prompts))):
            print(_side_by_side(prompts[i], base[i], tuned[i]) + "\n")
    else:
        print(f"\nmean response tokens: {result['mean_response_tokens']:.1f}")
        for key, label in _PRINTED_FIGURES:
            if key in result:
                print(f"{label}: {result[key]:.2f}")

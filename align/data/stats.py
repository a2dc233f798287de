"""Statistics of a set of rows for `align data inspect`: length distributions, how often the chosen answer is the
shorter one, label counts (desirable/undesirable for KTO rows; kind, difficulty, domain), and the concise scorer's
summaries of chosen vs rejected (or desirable vs undesirable) answers."""

from __future__ import annotations

import math
import statistics
from collections import Counter

from align.data.formats.normalise import ScoredPrompt
from align.data.rows import CompletionRow, KtoRow
from align.data.scoring import concise_score, count_words, score_answer

SCORE_FIELDS = ("words", "filler_rate", "restatement", "actionability", "key_point_recall")


def distribution(values: list[float]) -> dict:
    """`{min, p50, p90, max, mean}` of `values` (nearest-rank percentiles); {} for no values."""
    if not values:
        return {}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return {
        "min": ordered[0],
        "p50": rank(0.5),
        "p90": rank(0.9),
        "max": ordered[-1],
        "mean": round(statistics.fmean(ordered), 1),
    }


def _fields(row) -> dict[str, list[str]]:
    """The row's answers by role: chosen/rejected, completion, desirable/undesirable (KTO), or a scored prompt's
    completions."""
    if isinstance(row, CompletionRow):
        return {"completion": [row.completion]}
    if isinstance(row, KtoRow):
        return {row.role: [row.completion]}
    if isinstance(row, ScoredPrompt):
        return {"completions": [text for text, _ in row.completions]}
    return {"chosen": [row.chosen], "rejected": [row.rejected] if isinstance(row.rejected, str) else list(row.rejected)}


def _lengths(rows: list, token_lengths: list | None) -> dict[str, list[int]]:
    """Per role, the length of every prompt/answer: tokens when `token_lengths` is given (an answer's tokens are its
    sequence minus the prompt), else words."""
    out: dict[str, list[int]] = {"prompt": []}
    for index, row in enumerate(rows):
        fields = _fields(row)
        if token_lengths is None:
            out["prompt"].append(count_words(row.prompt))
            sizes = [count_words(answer) for answers in fields.values() for answer in answers]
        else:
            prompt_len, sequences = token_lengths[index]
            out["prompt"].append(prompt_len)
            sizes = [total - prompt_len for total in sequences]
        position = 0
        for role, answers in fields.items():
            out.setdefault(role, []).extend(sizes[position : position + len(answers)])
            position += len(answers)
    return out


def _chosen_shorter_share(lengths: dict[str, list[int]], rows: list) -> float | None:
    """Share of (chosen, rejected) pairs, each rejected answer of a K-negative row counting once, where the chosen
    answer is strictly shorter."""
    if "chosen" not in lengths:
        return None
    pairs, shorter, position = 0, 0, 0
    for chosen_len, row in zip(lengths["chosen"], rows, strict=True):
        k = 1 if isinstance(row.rejected, str) else len(row.rejected)
        for rejected_len in lengths["rejected"][position : position + k]:
            pairs += 1
            shorter += chosen_len < rejected_len
        position += k
    return round(shorter / pairs, 4) if pairs else None


def _score_summary(rows: list) -> dict:
    """Per role, the mean of each scorer metric and of `concise_score`; for pairs, the share the scorer agrees with
    (chosen scores higher than the rejected answer). Key points come from a `key_points` column when present."""
    sums: dict[str, dict[str, list[float]]] = {}
    agree = pairs = 0
    for row in rows:
        key_points = row.meta.get("key_points") if isinstance(row.meta.get("key_points"), list) else None
        per_role = {}
        for role, answers in _fields(row).items():
            scored = [score_answer(row.prompt, answer, key_points) for answer in answers]
            per_role[role] = [concise_score(s) for s in scored]
            bucket = sums.setdefault(role, {})
            for s, total in zip(scored, per_role[role], strict=True):
                for name in SCORE_FIELDS:
                    value = getattr(s, name)
                    if value is not None:
                        bucket.setdefault(name, []).append(value)
                bucket.setdefault("concise_score", []).append(total)
        if "chosen" in per_role:
            pairs += len(per_role["rejected"])
            agree += sum(per_role["chosen"][0] > r for r in per_role["rejected"])
    summary = {
        role: {name: round(statistics.fmean(v), 3) for name, v in metrics.items()} for role, metrics in sums.items()
    }
    if pairs:
        summary["scorer_prefers_chosen"] = round(agree / pairs, 4)
    return summary


def row_statistics(rows: list, token_lengths: list | None = None) -> dict:
    """Everything `align data inspect` reports about good rows (see the module docstring)."""
    if not rows:
        return {}
    lengths = _lengths(rows, token_lengths)
    stats = {
        "length_unit": "words" if token_lengths is None else "tokens",
        "lengths": {role: distribution(values) for role, values in lengths.items()},
    }
    share = _chosen_shorter_share(lengths, rows)
    if share is not None:
        stats["chosen_shorter_share"] = share
    verdicts = Counter(row.role for row in rows if isinstance(row, KtoRow))
    if verdicts:
        stats["label_counts"] = dict(sorted(verdicts.items()))
    for label in ("kind", "difficulty", "domain"):
        counts = Counter(str(row.meta[label]) for row in rows if label in row.meta)
        if counts:
            stats[f"{label}_counts"] = dict(sorted(counts.items()))
    stats["scorer"] = _score_summary(rows)
    return stats

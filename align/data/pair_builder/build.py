"""`align data build`: preference pairs from multi-answer data that favour the concise, actionable, complete answer.

Input is scored data (`ScoredPrompt`s: a prompt with two or more completions, scored by the data or not). Per prompt
the builder ranks the completions (by the data's scores or align's scorers, `answers`), forms every candidate pair
(each of the n·(n−1)/2 two-answer combinations), drops the unusable ones (identical, tied, chosen answer looping,
margin too small, align's scorers disagreeing, lengths too different), keeps at most N diverse pairs, then across the
dataset limits how often the shorter answer wins. Each written row carries `margin`, `difficulty` and `kind` columns,
which recipes filter (`kinds`, `difficulties`, `min_margin`) and order (`easy_to_hard`) by. Every candidate pair is
either written or counted under the reason it was dropped.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass

from align.data.formats import ScoredPrompt
from align.data.pair_builder.answers import Answer, pick_ranking, score_answers
from align.data.pair_builder.options import BuildOptions
from align.data.pair_builder.report import BuildReport
from align.data.scoring import AnswerScores
from align.scorers import ScorerSet

#: Why a candidate pair was not written: the pair checks in the order they run (a pair counts under the first it
#: fails), then the per-prompt pick (a repeat of a row already built is a `duplicate_pair`), then the dataset-level
#: balance. A prompt that gives no row is counted under the last of these that removed its pairs.
DROP_REASONS = (
    "identical_answers",
    "tied",
    "chosen_loops",
    "chosen_below_bar",
    "below_min_margin",
    "concise_disagrees",
    "length_ratio",
    "too_few_negatives",
    "per_prompt_cap",
    "duplicate_pair",
    "chosen_shorter_share",
)
DIFFICULTIES = ("easy", "medium", "hard")
#: Kind classifier bounds on rejected words / chosen words. The shipped seeds fit them: `verbose` answers are ~3× the
#: reference, `vague` ones within ±25% of it, `incomplete` ones at most 75% of it.
VERBOSE_RATIO = 1.5
SIMILAR_MIN_RATIO = 0.75
#: Margins and scores are rounded to this many decimals before any comparison, so the builder's ties, `min_margin`
#: and difficulty decisions are exactly the ones a recipe reproduces from the written `margin` column.
DECIMALS = 4


@dataclass(frozen=True)
class _Row:
    """One output row: `at` (the prompt's index), the chosen answer and its K rejected answers, best separated
    first; a row is described by its hardest (last) negative: margin, kind, difficulty, chosen-shorter."""

    at: int
    prompt: ScoredPrompt
    chosen: Answer
    rejected: tuple[Answer, ...]
    margins: tuple[float, ...]

    @property
    def margin(self) -> float:
        return self.margins[-1]

    @property
    def chosen_shorter(self) -> bool:
        return self.chosen.metrics.words < self.rejected[-1].metrics.words


def _check_pair(better: Answer, worse: Answer, options: BuildOptions, ranked_by: str) -> tuple[str | None, float]:
    """The first reason (DROP_REASONS) the pair better > worse is unusable, or None; and its rounded margin."""
    margin = round(better.score - worse.score, DECIMALS)
    words = sorted((better.metrics.words, worse.metrics.words))
    if better.text.strip() == worse.text.strip():
        return "identical_answers", margin
    if margin <= 0:
        return "tied", margin
    if better.metrics.loops:
        # Whatever the data's scores say, a pair teaching the model to prefer a looping answer (one that repeats a
        # sentence or phrase, `align.data.repetition`) teaches it to degenerate. Under the concise score a looping
        # answer scores 0, so it can only tie and never gets here; a reward model or a weighted scorer set can rank it
        # first, and this drops the pair.
        return "chosen_loops", margin
    if better.cut or (options.min_chosen_score is not None and better.concise < options.min_chosen_score):
        # The quality bar: an answer cut at the length cap is unfinished, and one under the bar is not worth
        # imitating, however much worse the other answer is.
        return "chosen_below_bar", margin
    if margin < options.min_margin:
        return "below_min_margin", margin
    if ranked_by == "both" and round(better.ours - worse.ours, DECIMALS) <= 0:
        return "concise_disagrees", margin
    if options.max_length_ratio is not None and words[1] > options.max_length_ratio * max(words[0], 1):
        return "length_ratio", margin
    return None, margin


def _diverse(eligible: list[tuple[int, int, float]], cap: int | None) -> list[tuple[int, int, float]]:
    """At most `cap` of the eligible `(chosen rank, rejected rank, margin)` pairs, chosen for diversity.

    Pairs are considered best chosen answer first, then largest margin first; a pair is taken only if its rejected
    answer is not rejected in an already-taken pair, until no such pair is left, then the rest in the same order.
    So with answers A > B > C > D and cap 3 the pairs are A–D, A–C, A–B: the best answer against each other one.
    """
    ordered = sorted(eligible, key=lambda pair: (pair[0], -pair[2], pair[1]))
    if cap is None:
        return ordered
    picked: list[tuple[int, int, float]] = []
    for fresh_only in (True, False):
        for pair in ordered:
            used = {rejected for _, rejected, _ in picked}
            if len(picked) < cap and pair not in picked and not (fresh_only and pair[1] in used):
                picked.append(pair)
    return picked


def _eligible(order: list[Answer], options: BuildOptions, ranked_by: str, reasons: Counter) -> list:
    """`(chosen rank, rejected rank, margin)` of every candidate pair of answers in rank `order` that passes
    `_check_pair`; the others are counted into `reasons`."""
    eligible = []
    for better in range(len(order)):
        for worse in range(better + 1, len(order)):
            reason, margin = _check_pair(order[better], order[worse], options, ranked_by)
            if reason:
                reasons[reason] += 1
            else:
                eligible.append((better, worse, margin))
    return eligible


def _prompt_rows(
    at: int,
    prompt: ScoredPrompt,
    answers: list[Answer],
    options: BuildOptions,
    ranked_by: str,
    dropped: Counter,
    seen: set,
):
    """The rows one prompt (scored as `answers`) gives, its candidate count, and why it gives none (None when it gives
    some); pairs not used are counted into `dropped` by reason. `seen` holds the rows built so far, which a row may
    not repeat."""
    order = sorted(answers, key=lambda answer: (-answer.score, -answer.ours, answer.index))
    reasons: Counter = Counter()
    eligible = _eligible(order, options, ranked_by, reasons)

    def key(group: list) -> tuple:
        # What load_source counts as a repeated row (align.data.issues.answer_key): prompt and answers, stripped.
        return prompt.prompt.strip(), order[group[0][0]].text.strip(), tuple(order[w].text.strip() for _, w, _ in group)

    if options.negatives == 1:
        fresh = [pair for pair in eligible if key([pair]) not in seen]
        reasons["duplicate_pair"] += len(eligible) - len(fresh)
        groups = [[pair] for pair in _diverse(fresh, options.max_pairs_per_prompt)]
    else:
        best = sorted((pair for pair in eligible if pair[0] == 0), key=lambda pair: (-pair[2], pair[1]))
        groups = [best[: options.negatives]] if len(best) >= options.negatives else []
        reasons["too_few_negatives"] += 0 if groups else len(eligible)
        if groups and key(groups[0]) in seen:
            reasons["duplicate_pair"] += options.negatives
            groups = []
    seen.update(map(key, groups))
    candidates, used = len(order) * (len(order) - 1) // 2, sum(map(len, groups))
    # The eligible pairs left unpicked: beyond the cap, or (K > 1) not among the best answer's K negatives.
    reasons["per_prompt_cap"] += candidates - used - sum(reasons.values())
    reasons = +reasons  # drop zero counts
    dropped.update(reasons)
    rows = [
        _Row(at, prompt, order[group[0][0]], tuple(order[w] for _, w, _ in group), tuple(m for *_, m in group))
        for group in groups
    ]
    why = None if rows else max(reasons, key=DROP_REASONS.index, default="no_candidates")
    return rows, candidates, why


def _balance(rows: list[_Row], share: float | None) -> tuple[list[_Row], list[_Row]]:
    """Rows kept and rows dropped so that at most `share` of the kept rows have the shorter answer chosen: the
    chosen-shorter rows with the smallest margin go first, later rows first among equal margins."""
    if share is None:
        return rows, []
    shorter = sorted((i for i, row in enumerate(rows) if row.chosen_shorter), key=lambda i: (rows[i].margin, -i))
    count, total, drop = len(shorter), len(rows), set()
    for index in shorter:
        if count == 0 or count / total <= share:
            break
        drop.add(index)
        count, total = count - 1, total - 1
    return [r for i, r in enumerate(rows) if i not in drop], [r for i, r in enumerate(rows) if i in drop]


def tertiles(margins: list[float]) -> tuple[float, float] | None:
    """The 1/3 and 2/3 quantiles of `margins` (linear interpolation between the sorted values at position
    p·(n−1), as numpy's default), rounded to DECIMALS; None when there are none.
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6] → (0.2667, 0.4333)."""
    if not margins:
        return None
    ordered = sorted(margins)

    def quantile(p: float) -> float:
        position = p * (len(ordered) - 1)
        low = math.floor(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return round(quantile(1 / 3), DECIMALS), round(quantile(2 / 3), DECIMALS)


def difficulty(margin: float, thresholds: tuple[float, float]) -> str:
    """The difficulty of a margin, with thresholds (lo, hi): easy when margin ≥ hi, hard when < lo, else medium."""
    low, high = thresholds
    return "easy" if margin >= high else "hard" if margin < low else "medium"


def classify_kind(chosen: AnswerScores, rejected: AnswerScores) -> str:
    """Why the rejected answer is worse, from the scorer's metrics (r = rejected words / chosen words):

    - "verbose": r ≥ 1.5 and key-point recall not lower (longer, nothing added);
    - "vague": 0.75 ≤ r < 1.5 and lower actionability (about as long, less concrete);
    - "incomplete": r < 1 and lower key-point recall (shorter, missing content; needs key points);
    - "other": none of these.
    """
    ratio = rejected.words / max(chosen.words, 1)
    recalls = (chosen.key_point_recall, rejected.key_point_recall)
    lower_recall = None not in recalls and recalls[1] < recalls[0]
    if ratio >= VERBOSE_RATIO and not lower_recall:
        return "verbose"
    if SIMILAR_MIN_RATIO <= ratio < VERBOSE_RATIO and rejected.actionability < chosen.actionability:
        return "vague"
    if ratio < 1 and lower_recall:
        return "incomplete"
    return "other"


def _row_dict(row: _Row, thresholds: tuple[float, float], shadowed: Counter) -> dict:
    """The output row: our columns in a fixed order, then the input row's other columns (ours win; counted)."""
    kinds = [answer.label or classify_kind(row.chosen.metrics, answer.metrics) for answer in row.rejected]
    multi = len(row.rejected) > 1

    def one(values: list):
        return values if multi else values[0]

    out = {
        "prompt": row.prompt.prompt,
        "chosen": row.chosen.text,
        "rejected": one([a.text for a in row.rejected]),
        "margin": row.margin,
        "difficulty": difficulty(row.margin, thresholds),
        "kind": kinds[-1],
    }
    if multi:
        out["rejected_kinds"] = kinds
    out.update(
        chosen_score=round(row.chosen.score, DECIMALS),
        rejected_score=one([round(a.score, DECIMALS) for a in row.rejected]),
        chosen_words=row.chosen.metrics.words,
        rejected_words=one([a.metrics.words for a in row.rejected]),
        source=row.prompt.location or row.prompt.source,
    )
    for key, value in row.prompt.meta.items():
        if key in out:
            shadowed[key] += 1
        else:
            out[key] = value
    return out


def _share(rows: list[_Row]) -> float | None:
    return round(sum(row.chosen_shorter for row in rows) / len(rows), DECIMALS) if rows else None


def _mean(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def build_pairs(prompts: list[ScoredPrompt], options: BuildOptions | None = None) -> tuple[list[dict], BuildReport]:
    """Preference rows (dicts in output column order) from `prompts`, and the report of what was kept and dropped.

    Deterministic (the scorers, `options.scorers`, are made here; a reward model is loaded on first use): rows come
    in input order, a prompt's pairs in the order `_diverse` picks them.
    """
    options = options or BuildOptions()
    scorers = ScorerSet(options.scorers, options.scorer_settings)
    ranked_by = pick_ranking(prompts, options, scorers)
    scored = score_answers(prompts, options, ranked_by, scorers)
    dropped, without, shadowed, rows, candidates, seen = Counter(), Counter(), Counter(), [], 0, set()
    for at, (prompt, answers) in enumerate(zip(prompts, scored, strict=True)):
        prompt_rows, count, why = _prompt_rows(at, prompt, answers, options, ranked_by, dropped, seen)
        rows += prompt_rows
        candidates += count
        without.update([why] if why else [])
    share_before = _share(rows)
    rows, removed = _balance(rows, options.max_chosen_shorter_share)
    dropped["chosen_shorter_share"] += sum(len(row.rejected) for row in removed)
    without["chosen_shorter_share"] += len({row.at for row in removed} - {row.at for row in rows})
    thresholds = options.difficulty_thresholds or tertiles([row.margin for row in rows])
    out = [_row_dict(row, thresholds, shadowed) for row in rows]
    report = BuildReport(
        ranked_by=ranked_by,
        prompts_read=len(prompts),
        prompts_with_pairs=len({row.at for row in rows}),
        prompts_without_pairs={why: without[why] for why in (*DROP_REASONS, "no_candidates") if without[why]},
        candidate_pairs=candidates,
        dropped={reason: dropped[reason] for reason in DROP_REASONS},
        pairs_written=sum(len(row.rejected) for row in rows),
        rows_written=len(rows),
        kinds=dict(sorted(Counter(row["kind"] for row in out).items())),
        difficulties={name: sum(row["difficulty"] == name for row in out) for name in DIFFICULTIES},
        difficulty_thresholds=tuple(thresholds) if thresholds else None,
        thresholds_from="options" if options.difficulty_thresholds else "tertiles",
        chosen_shorter_share_before=share_before,
        chosen_shorter_share_after=_share(rows),
        mean_chosen_words=_mean([row.chosen.metrics.words for row in rows]),
        mean_rejected_words=_mean([answer.metrics.words for row in rows for answer in row.rejected]),
        columns_shadowed=dict(sorted(shadowed.items())),
        scorers=dict(scorers.weights),
        options={**asdict(options), "score_weights": dict(options.score_weights) if options.score_weights else None},
    )
    return out, report

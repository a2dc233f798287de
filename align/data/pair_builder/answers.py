"""The answers the pair builder ranks: which score ranks them (the ranking) and every completion scored (`Answer`).

align's scorers (`align.scorers.ScorerSet`, by default the concise score alone) score all prompts' answers in one
call, so a reward model reads them in full batches; the concise scorer's metrics (words, key-point recall, loops)
are computed for every answer whatever ranks it, since the pair checks and the `kind` classifier read them.
"""

from __future__ import annotations

from dataclasses import dataclass

from align.data.formats import ScoredPrompt
from align.data.pair_builder.options import BuildOptions
from align.data.scoring import AnswerScores, concise_score, score_answer
from align.errors import AlignError, Problem
from align.progress import progress_bar
from align.scorers import ScoreItem, ScorerSet
from align.scorers.concise import word_budget

#: What the ranking may be: the data's scores, align's concise scorer alone, align's scorer set (any other), or the
#: data's scores where align's scorers agree.
RANKINGS = ("data", "concise", "scorers", "both")


@dataclass(frozen=True)
class Answer:
    """One completion: its position in the row, the concise scorer's metrics, align's score (`ours`: the scorer
    set's, in its units; the concise score, [0, 1], by default), its ranking score (the ranking units), its own
    `kind` label, if the data gave one, its concise score (`concise`, [0, 1]: what the quality bar compares), and
    `cut`: whether generation cut it at the length cap (a `truncated: true` label, which on-policy answers carry)."""

    index: int
    text: str
    metrics: AnswerScores
    ours: float
    score: float
    label: str | None
    concise: float = 0.0
    cut: bool = False


def row_error(prompt: ScoredPrompt, key: str, message: str) -> AlignError:
    return AlignError(Problem(prompt.location or prompt.source or "data", message, None, key))


def _key_points(prompt: ScoredPrompt) -> list[str] | None:
    """The row's `key_points` column (None when absent or empty): what the scorer's key-point recall looks for."""
    value = prompt.meta.get("key_points")
    if value is None or value == []:
        return None
    if not isinstance(value, list) or not all(isinstance(point, str) and point.strip() for point in value):
        raise row_error(prompt, "key_points", "must be a list of non-empty strings (phrases a complete answer has)")
    return value


def _reference(prompt: ScoredPrompt) -> str | None:
    """The row's `reference` answer when it is a non-blank string: its length is the concise score's word budget."""
    reference = prompt.meta.get("reference")
    return reference if isinstance(reference, str) and reference.strip() else None


def _label(prompt: ScoredPrompt, index: int) -> str | None:
    labels = prompt.labels[index] if index < len(prompt.labels) else {}
    kind = labels.get("kind")
    if kind is not None and not (isinstance(kind, str) and kind.strip()):
        raise row_error(prompt, f"completions[{index}].kind", f"must be a non-empty string, got {kind!r}")
    return kind


def _cut(prompt: ScoredPrompt, index: int) -> bool:
    labels = prompt.labels[index] if index < len(prompt.labels) else {}
    return labels.get("truncated") is True


def pick_ranking(prompts: list[ScoredPrompt], options: BuildOptions, scorers: ScorerSet) -> str:
    """The score this build ranks by (RANKINGS): `options.score`, with align's scorers ("concise" for the concise
    scorer alone, else "scorers") standing in for "concise" and for input whose rows carry no scores."""
    ours = "concise" if scorers.only_concise else "scorers"
    scored = [prompt.scored for prompt in prompts]
    if options.score == "concise" or not any(scored):
        return ours
    if not all(scored):
        odd, first = prompts[scored.index(False)], prompts[scored.index(True)]
        message = (
            f"has unscored answers while {first.location or first.source} is scored; margins would mix the "
            "data's units with the concise scorer's: score every row, or rank all by score=concise"
        )
        raise row_error(odd, "completions", message)
    if options.score == "data" and not scorers.only_concise:
        message = (
            f"{scorers.describe()}: the input's answers carry scores and --score data ranks by them, so these "
            "scorers would go unused: give --score concise to rank by the scorers, or --score both to keep the "
            "data's pairs they agree with"
        )
        raise AlignError(Problem("--scorer", message))
    return options.score


def score_answers(prompts: list[ScoredPrompt], options: BuildOptions, ranking: str, scorers: ScorerSet):
    """Every completion of every prompt scored, one list per prompt: `ours` from `scorers` (one call for all
    prompts, a prompt's answers being one group; the concise score reads the row's `key_points` and takes its
    `reference`'s length as word budget), `score` the data's when `ranking` is "data" or "both", else `ours`.
    Every row is checked before anything is scored, so a bad row stops the build before a reward model runs."""
    groups, data, labels, cuts = [], [], [], []
    for prompt in prompts:
        key_points, reference = _key_points(prompt), _reference(prompt)
        groups.append([ScoreItem(prompt.prompt, text, key_points, reference) for text, _ in prompt.completions])
        labels.append([_label(prompt, index) for index in range(len(prompt.completions))])
        cuts.append([_cut(prompt, index) for index in range(len(prompt.completions))])
        data.append(_data_scores(prompt, options) if ranking in ("data", "both") else None)
    ours = scorers.score_groups(groups)
    answers = []
    with progress_bar(len(groups), "scoring answers") as bar:
        for items, our, given, kinds, cut in zip(groups, ours, data, labels, cuts, strict=True):
            ranked = given if given is not None else our
            metrics = [score_answer(item.prompt, item.answer, item.key_points) for item in items]
            concise = [concise_score(m, word_budget(item.reference)) for m, item in zip(metrics, items, strict=True)]
            answers.append(
                [
                    Answer(i, items[i].answer, metrics[i], our[i], ranked[i], kinds[i], concise[i], cut[i])
                    for i in range(len(items))
                ]
            )
            bar.update()
    return answers


def _data_scores(prompt: ScoredPrompt, options: BuildOptions) -> list[float]:
    """The data's ranking score of each completion (`ScoredPrompt.totals`), a bad row named by file and line."""
    try:
        return prompt.totals(options.score_key, options.score_weights)
    except ValueError as exc:
        raise row_error(prompt, "completions", str(exc)) from None

"""Sampled answers as scored candidates: the pair builder's input (`ScoredPrompt`), and the concise score and
degeneration flags the unpaired rows are made from."""

from __future__ import annotations

from dataclasses import dataclass, replace

from align.data.formats import ScoredPrompt
from align.data.scoring import concise_score, count_words, score_answer
from align.evaluation.generation import GeneratedAnswer
from align.on_policy.prompts import PromptRow
from align.scorers import ScoreItem, ScorerSet


@dataclass(frozen=True)
class Candidate:
    """One candidate answer to a prompt: its text, concise score ([0, 1]; the word budget is the reference's length
    when there is one), whether it loops or was cut at the length cap, whether it is the prompt's reference answer
    rather than a sampled one, and `rank`: what ranks it among the prompt's candidates (the stage's scorers; the
    concise score when that is the only one, else `rank_candidates` sets it)."""

    text: str
    score: float
    loops: bool
    cut: bool
    reference: bool = False
    rank: float | None = None

    @property
    def ranking(self) -> float:
        return self.score if self.rank is None else self.rank

    def clears(self, bar: float) -> bool:
        """Whether the answer may be imitated: at least `bar`, not looping, not cut at the length cap."""
        return self.score >= bar and not self.loops and not self.cut


def _budget(row: PromptRow) -> int | None:
    return count_words(row.reference) if row.reference else None


def candidates_of(row: PromptRow, answers: list[GeneratedAnswer], include_reference: bool) -> list[Candidate]:
    """The prompt's distinct candidates (an answer sampled twice counts once), sampled ones in sampling order, then
    the reference answer when `include_reference` and the row has one."""
    key_points = list(row.key_points) if row.key_points else None
    texts = [(answer.text, answer.truncated, False) for answer in answers]
    if include_reference and row.reference:
        texts.append((row.reference.strip(), False, True))
    out, seen = [], set()
    for text, cut, is_reference in texts:
        if text.strip() in seen:
            continue
        seen.add(text.strip())
        metrics = score_answer(row.prompt, text, key_points)
        out.append(Candidate(text, concise_score(metrics, _budget(row)), metrics.loops, cut, is_reference))
    return out


def rank_candidates(
    rows: list[PromptRow], candidates: list[list[Candidate]], scorers: ScorerSet
) -> list[list[Candidate]]:
    """The candidates with `rank` set from `scorers` (all prompts in one call, a prompt's candidates being one
    group, so a reward model reads full batches); unchanged when the concise scorer alone ranks them."""
    if scorers.only_concise:
        return candidates
    groups = [
        [ScoreItem(row.prompt, c.text, list(row.key_points) if row.key_points else None, row.reference) for c in group]
        for row, group in zip(rows, candidates, strict=True)
    ]
    ranks = scorers.score_groups(groups)
    return [
        [replace(c, rank=r) for c, r in zip(group, scores, strict=True)]
        for group, scores in zip(candidates, ranks, strict=True)
    ]


def to_scored_prompts(rows: list[PromptRow], candidates: list[list[Candidate]]) -> list[ScoredPrompt]:
    """Each prompt's candidates as the pair builder's input, labelled with `truncated` (never chosen) and `origin`
    (`sampled` or `reference`), with the row's `reference` (the concise score's word budget) and `key_points`
    (recall) as meta. Candidates ranked by the concise score alone are unscored completions (the builder scores
    them); candidates with a `rank` carry it as their `score`, which the builder then ranks by (`score: data`)."""
    out = []
    for row, group in zip(rows, candidates, strict=True):
        meta = {"key_points": list(row.key_points)} if row.key_points else {}
        if row.reference:
            meta["reference"] = row.reference
        labels = [{"truncated": c.cut, "origin": "reference" if c.reference else "sampled"} for c in group]
        completions = [(c.text, {} if c.rank is None else {"score": c.rank}) for c in group]
        out.append(ScoredPrompt(row.prompt, completions, row.location, meta, row.location, labels))
    return out

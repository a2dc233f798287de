"""The `concise` scorer: align's deterministic concise score (`align.data.scoring.concise_score`)."""

from __future__ import annotations

from align.data.scoring import concise_score, count_words, score_answer
from align.scorers.base import ScoreItem, Scorer, ScorerSettings


def word_budget(reference: str | None) -> int | None:
    """The concise score's word budget for an answer: the reference's word count when there is a (non-blank)
    reference, else None (the scorer's default budget)."""
    return count_words(reference) if isinstance(reference, str) and reference.strip() else None


class ConciseScorer(Scorer):
    """Complete (key-point recall), then actionable, then concise; a looping answer scores 0."""

    name = "concise"
    description = "align's deterministic concise score: key-point recall, actionability, brevity; 0 when it loops"
    units = "concise score in [0, 1]"

    def __init__(self, settings: ScorerSettings | None = None):
        # Nothing to load or configure: the settings are for model-backed scorers.
        del settings

    def score(self, items: list[ScoreItem]) -> list[float]:
        return [
            concise_score(score_answer(item.prompt, item.answer, item.key_points), word_budget(item.reference))
            for item in items
        ]

"""`ScorerSet`: one or more scorers, weighted, scoring each prompt's answers as one group.

Why combined scores are standardised: the scorers' units differ (the concise score is in [0, 1], a reward model's
rewards are unbounded logits whose scale depends on the model), so a plain weighted sum would let whichever scorer
spreads its scores widest decide alone, whatever the weights say. Within one prompt's answers each scorer's scores are
turned into z-scores, (s − mean) / std with the population std (std 0, all answers scored alike: all 0), so each
scorer contributes its ranking of those answers on the same scale; the combined score is Σ wₖ·zₖ / Σ wₖ. Only the
ranking within a group is meaningful: z-scores of different prompts are not comparable. With a single scorer there is
nothing to reconcile, and its raw scores are kept (the default concise-only set gives exactly the concise score).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping

from align.errors import AlignError, Problem
from align.scorers.base import ScoreItem, ScorerSettings
from align.scorers.registry import SCORERS, check_weight, make_scorer, unknown_scorer


def standardise(scores: list[float]) -> list[float]:
    """z-scores of `scores` (population std); all 0 when the scores are all equal. Mean and std are computed exactly
    (`statistics`), so equal scores give exactly 0, never rounding noise blown up to ±1."""
    mean, std = statistics.mean(scores), statistics.pstdev(scores)
    return [0.0 if std == 0 else (score - mean) / std for score in scores]


class ScorerSet:
    """Scorers by name with their weights (each a finite number > 0), made with `settings`."""

    def __init__(self, weights: Mapping[str, float], settings: ScorerSettings | None = None):
        if not weights:
            raise AlignError(Problem("--scorer", f"give at least one scorer: {', '.join(SCORERS)}"))
        for name in weights:
            if name not in SCORERS:
                raise unknown_scorer(name)
        self.weights = {name: check_weight(name, weight) for name, weight in weights.items()}
        self.settings = settings or ScorerSettings()
        self.scorers = {name: make_scorer(name, self.settings) for name in self.weights}

    @property
    def only_concise(self) -> bool:
        """Whether this is the concise scorer alone (any weight): scores are then exactly the concise score."""
        return list(self.weights) == ["concise"]

    def describe(self) -> str:
        """e.g. "concise 1, reward_model 0.5"."""
        return ", ".join(f"{name} {weight:g}" for name, weight in self.weights.items())

    def score_groups(self, groups: list[list[ScoreItem]]) -> list[list[float]]:
        """One score per item, grouped as given (a group is one prompt's answers). One scorer: its raw scores, in its
        units. Several: Σ wₖ·zₖ / Σ wₖ of each scorer's z-scores within the group (see the module docstring)."""
        flat = [item for group in groups for item in group]
        if not flat:  # nothing to score: no reason to load a model
            return [[] for _ in groups]
        raw = {name: scorer.score(flat) for name, scorer in self.scorers.items()}
        for name, scores in raw.items():
            bad = next((i for i, score in enumerate(scores) if not math.isfinite(score)), None)
            if bad is not None:
                where = f"prompt {flat[bad].prompt[:40]!r}"
                raise AlignError(Problem(f"scorer {name}", f"gave {scores[bad]} to an answer of {where}"))
        out, start = [], 0
        total = sum(self.weights.values())
        for group in groups:
            end = start + len(group)
            if len(self.weights) == 1:
                out.append(list(next(iter(raw.values()))[start:end]))
            else:
                columns = {name: standardise(scores[start:end]) if group else [] for name, scores in raw.items()}
                out.append(
                    [sum(self.weights[n] * columns[n][i] for n in self.weights) / total for i in range(len(group))]
                )
            start = end
        return out

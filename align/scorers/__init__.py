"""Scorers: how align scores answers to a prompt, by name, alone or weighted together.

`base` holds the contract (`ScoreItem`, `ScorerSettings`, `Scorer`), `concise` align's deterministic concise score,
`reward_model` a sequence-classification reward model, `registry` the scorers by name and the `--scorer` flag, and
`weighted` the `ScorerSet` that combines several per prompt.
"""

from align.scorers.base import ScoreItem, Scorer, ScorerSettings
from align.scorers.concise import ConciseScorer
from align.scorers.registry import SCORERS, make_scorer, parse_scorer_weights
from align.scorers.reward_model import RewardModelScorer
from align.scorers.weighted import ScorerSet, standardise

__all__ = [
    "SCORERS",
    "ConciseScorer",
    "RewardModelScorer",
    "ScoreItem",
    "Scorer",
    "ScorerSet",
    "ScorerSettings",
    "make_scorer",
    "parse_scorer_weights",
    "standardise",
]

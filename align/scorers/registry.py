"""The scorers by name (`SCORERS`), making one (`make_scorer`) and reading `--scorer NAME[=WEIGHT]` flags."""

from __future__ import annotations

import difflib
import math

from align.errors import AlignError, Problem
from align.scorers.base import Scorer, ScorerSettings
from align.scorers.concise import ConciseScorer
from align.scorers.reward_model import RewardModelScorer

SCORERS: dict[str, type[Scorer]] = {
    ConciseScorer.name: ConciseScorer,
    RewardModelScorer.name: RewardModelScorer,
}


def unknown_scorer(name: str, where: str = "--scorer") -> AlignError:
    """The error for a name not in SCORERS, suggesting the closest one."""
    close = difflib.get_close_matches(name, SCORERS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return AlignError(Problem(where, f"no scorer {name!r}; {hint}scorers: {', '.join(SCORERS)}"))


def make_scorer(name: str, settings: ScorerSettings | None = None) -> Scorer:
    """The scorer registered as `name`, set up with `settings`."""
    if name not in SCORERS:
        raise unknown_scorer(name)
    return SCORERS[name](settings or ScorerSettings())


def check_weight(name: str, weight, where: str = "--scorer") -> float:
    """`weight` as a float when it is a finite number > 0, else a one-line error naming `where` and the scorer."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (math.isfinite(weight) and weight > 0):
        raise AlignError(Problem(where, f"{name}: the weight must be a finite number > 0, got {weight!r}"))
    return float(weight)


def parse_scorer_weights(items: list[str]) -> dict[str, float]:
    """`--scorer` values (`NAME`, weight 1, or `NAME=WEIGHT`) → `{name: weight}` in the order given. An unknown name,
    a repeated one, or a weight that is not a finite number > 0 is a one-line error naming `--scorer`."""
    weights: dict[str, float] = {}
    for item in items:
        name, sep, text = (part.strip() for part in item.partition("="))
        if name not in SCORERS:
            raise unknown_scorer(name)
        if name in weights:
            raise AlignError(Problem("--scorer", f"{name} is given twice; give each scorer once, as NAME=WEIGHT"))
        try:
            weight = float(text) if sep else 1.0
        except ValueError:
            raise AlignError(Problem("--scorer", f"{item!r}: give NAME or NAME=WEIGHT (a number > 0)")) from None
        weights[name] = check_weight(name, weight)
    return weights

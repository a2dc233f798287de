"""Options of `align data build` (`BuildOptions`), checked when built: a bad value names its command-line flag."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from align.errors import AlignError, Problem
from align.scorers import SCORERS, ScorerSettings
from align.scorers.registry import check_weight, unknown_scorer


def _in_range(value, low: float, high: float = math.inf, whole: bool = False, optional: bool = False) -> bool:
    """Whether `value` is a number (a whole one if `whole`) in [low, high]; None passes when `optional`."""
    if value is None:
        return optional
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
        return False
    return math.isfinite(value) and low <= value <= high


def _flag_error(name: str, message: str) -> AlignError:
    return AlignError(Problem(f"--{name.replace('_', '-')}", message))


@dataclass(frozen=True)
class BuildOptions:
    """How answers become pairs (see `align.data.pair_builder.build` for the order of the steps).

    `score` picks the ranking score, whose units `min_margin`, `margin` and `difficulty_thresholds` are in:
      - "data": the data's scores (`score_key`, or `Σ score_weights·score`, else the only score);
      - "concise": align's scorers (`scorers`; by default the concise score, `scoring.concise_score`, in [0, 1]),
        ignoring any data scores;
      - "both": the data's scores, and a pair is kept only if align's scorers also rank its chosen answer strictly
        higher (else dropped as `concise_disagrees`); align's scorers break rank ties.
    Input whose answers carry no scores is always ranked by align's scorers; a build never mixes units, so scored
    and unscored rows in one input are an error.
    `scorers` `{name: weight}` (`align.scorers`; `--scorer NAME[=W]`): which of align's scorers score the answers,
    made with `scorer_settings` (`--reward-model`). Other than the concise scorer alone, their combined score
    (`ScorerSet`: z-scored per prompt and weighted when there are several, else the one scorer's raw units) ranks
    the answers wherever the concise score would, and scored input ranked by the data is refused (they would go
    unused). The concise metrics (words, key-point recall, loops, the kind) are the concise scorer's in every case.
    `max_length_ratio`: drop pairs whose longer answer has more than this many times the words of the shorter.
    `max_chosen_shorter_share`: at most this share of written rows may have the shorter answer chosen, so a model
    cannot learn "shorter wins"; the lowest-margin such rows are dropped first.
    `difficulty_thresholds` `(lo, hi)`: margin ≥ hi → easy, < lo → hard, else medium; None: the tertiles of the
    written rows' margins. `negatives` K > 1: one row per prompt, its best answer against K rejected answers.
    `min_chosen_score`: the quality bar, in concise-score units [0, 1]: a pair whose better answer scores below it
    (or was cut at the length cap) is dropped as `chosen_below_bar`; None: no bar.
    """

    score: Literal["data", "concise", "both"] = "data"
    score_key: str | None = None
    score_weights: Mapping[str, float] | None = None
    min_margin: float = 0.0
    max_pairs_per_prompt: int | None = None
    max_length_ratio: float | None = None
    max_chosen_shorter_share: float | None = None
    difficulty_thresholds: tuple[float, float] | None = None
    negatives: int = 1
    min_chosen_score: float | None = None
    scorers: Mapping[str, float] = field(default_factory=lambda: {"concise": 1.0})
    scorer_settings: ScorerSettings = ScorerSettings()

    def __post_init__(self) -> None:
        self._check_scorers()
        if self.score not in ("data", "concise", "both"):
            raise _flag_error("score", f"must be data, concise or both, got {self.score!r}")
        if self.score_key and self.score_weights:
            raise _flag_error("score_key", "give score_key or score_weights, not both")
        checks = [
            ("min_margin", self.min_margin, _in_range(self.min_margin, 0), "a number ≥ 0"),
            (
                "max_pairs_per_prompt",
                self.max_pairs_per_prompt,
                _in_range(self.max_pairs_per_prompt, 1, whole=True, optional=True),
                "a whole number ≥ 1",
            ),
            (
                "max_length_ratio",
                self.max_length_ratio,
                _in_range(self.max_length_ratio, 1, optional=True),
                "a number ≥ 1 (longer answer's words / shorter answer's words)",
            ),
            (
                "max_chosen_shorter_share",
                self.max_chosen_shorter_share,
                _in_range(self.max_chosen_shorter_share, 0, 1, optional=True),
                "a share from 0 to 1",
            ),
            ("negatives", self.negatives, _in_range(self.negatives, 1, whole=True), "a whole number ≥ 1"),
            (
                "min_chosen_score",
                self.min_chosen_score,
                _in_range(self.min_chosen_score, 0, 1, optional=True),
                "a concise score from 0 to 1",
            ),
        ]
        for name, value, ok, need in checks:
            if not ok:
                raise _flag_error(name, f"must be {need}, got {value!r}")
        limits = self.difficulty_thresholds
        pair = isinstance(limits, (tuple, list)) and len(limits) == 2 and all(_in_range(x, -math.inf) for x in limits)
        if limits is not None and not (pair and limits[0] <= limits[1]):
            raise _flag_error("difficulty_thresholds", f"must be two numbers lo ≤ hi, got {limits!r}")
        if self.negatives > 1 and self.max_pairs_per_prompt is not None:
            message = "applies to pairs; with negatives > 1 every prompt gives one row (its best answer vs K others)"
            raise _flag_error("max_pairs_per_prompt", message)

    def _check_scorers(self) -> None:
        """Known scorers with weights > 0; a reward model given exactly when the reward_model scorer is used."""
        if not self.scorers:
            raise _flag_error("scorer", f"give at least one scorer: {', '.join(SCORERS)}")
        for name, weight in self.scorers.items():
            if name not in SCORERS:
                raise unknown_scorer(name)
            check_weight(name, weight)
        uses = "reward_model" in self.scorers
        if uses and not self.scorer_settings.reward_model:
            message = "reward_model needs --reward-model PATH_OR_ID (a local folder or Hub id of a reward model)"
            raise _flag_error("scorer", message)
        if self.scorer_settings.reward_model and not uses:
            message = "is used by the reward_model scorer only: add --scorer reward_model[=WEIGHT]"
            raise _flag_error("reward_model", message)

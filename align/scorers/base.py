"""What every scorer takes and gives: `ScoreItem` (one answer to score), `ScorerSettings` (how model-backed scorers
load and run) and the abstract `Scorer`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from align.errors import AlignError, Problem


@dataclass(frozen=True)
class ScoreItem:
    """One answer to one prompt. `key_points` are phrases a complete answer has, `reference` a known good answer
    (its word count is the concise scorer's word budget); scorers that need neither ignore them."""

    prompt: str
    answer: str
    key_points: list[str] | None = None
    reference: str | None = None


@dataclass(frozen=True)
class ScorerSettings:
    """How model-backed scorers run: `reward_model` is a local folder or Hub id of a sequence-classification model
    (needed by the `reward_model` scorer only); `batch_size` answers per forward pass; `max_length` the most tokens of
    prompt + answer a reward model reads (longer is refused, never cut); `device` e.g. "cuda:0" (None: the first GPU
    when there is one, else the CPU)."""

    reward_model: str | None = None
    batch_size: int = 8
    max_length: int = 1024
    device: str | None = None

    def __post_init__(self) -> None:
        for flag, value in (("ScorerSettings.batch_size", self.batch_size), ("--reward-max-length", self.max_length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AlignError(Problem(flag, f"must be a whole number ≥ 1, got {value!r}"))


class Scorer(ABC):
    """Scores answers, higher is better. `name` is the registry key (`--scorer NAME`), `description` one line for
    people, `units` what one score means (a scorer's scores are only comparable with its own)."""

    name: str
    description: str
    units: str

    @abstractmethod
    def score(self, items: list[ScoreItem]) -> list[float]:
        """One score per item, in `units`, in the items' order."""

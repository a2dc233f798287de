"""`RunContext`: what every stage of one run shares, handed to the stage runner and the stage check as one object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from align.evaluation.probes import BaseAnswers
from align.tracking import Tracker

if TYPE_CHECKING:
    from align.outputs import RunOutputs


@dataclass(frozen=True)
class RunContext:
    """One run's shared state.

    Attributes:
        tokenizer: the run's tokenizer (every stage trains the same base model).
        peft: the recipe's `peft:` mapping (LoRA settings of a new adapter).
        seed: the recipe's seed.
        run_name: the recipe's name, secrets masked (trainer run names are `<run_name>/<stage>`).
        outputs: the run's output folder.
        tracker: the run's experiment tracker (a no-op `Tracker` when none is set).
        base_answers: the base model's probe answers, computed once per probe set and reused by every stage.
    """

    tokenizer: Any
    peft: dict
    seed: int
    run_name: str
    outputs: RunOutputs
    tracker: Tracker = field(default_factory=Tracker)
    base_answers: BaseAnswers = field(default_factory=BaseAnswers)

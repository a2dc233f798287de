"""Stage gates: thresholds on a stage's figures that must hold before the next stage starts.

A gate reads one figure (held-out reward accuracy, probe answer length ratio, key-point recall drop, loop rate and its
increase over the base model) and compares it
with the recipe's limit; a miss stops the run (exit 1) with a message naming the gate, the figure and the margin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from align.errors import GateMissed
from align.recipe.schema import GatesConfig

__all__ = ["GATES", "Gate", "GateMissed", "GateResult", "check_gates", "raise_on_missed"]


@dataclass(frozen=True)
class Gate:
    """How one `GatesConfig` field is checked: the figure it reads, whether the limit is a floor or a ceiling, and
    how the figure is described in messages."""

    figure: str
    floor: bool
    describe: str


GATES = {
    "min_pair_accuracy": Gate("rewards/accuracies", True, "held-out reward accuracy"),
    "max_mean_tokens_ratio": Gate("probe/mean_tokens_ratio", False, "probe answer length ÷ base model's"),
    "max_key_point_recall_drop": Gate("probe/key_point_recall_drop", False, "probe key-point recall drop vs base"),
    "max_loop_rate": Gate("probe/loop_rate", False, "share of probe answers that loop"),
    "max_loop_rate_increase": Gate("probe/loop_rate_increase", False, "probe loop rate increase vs base"),
}


@dataclass(frozen=True)
class GateResult:
    gate: str
    limit: float
    value: float | None
    passed: bool

    def message(self, stage: str) -> str:
        gate = GATES[self.gate]
        if self.value is None:
            return f"stage {stage!r} missed gate {self.gate}: {gate.describe} was not measured ({gate.figure} missing)"
        relation = "below the floor" if gate.floor else "above the limit"
        return (
            f"stage {stage!r} missed gate {self.gate}: {gate.describe} is {self.value:.4g}, {relation} "
            f"{self.limit:g} by {abs(self.value - self.limit):.4g}"
        )

    def to_dict(self) -> dict:
        return asdict(self)


def check_gates(gates: GatesConfig, figures: dict[str, float]) -> list[GateResult]:
    """One result per gate the recipe sets; a figure that is missing fails its gate (never passes silently)."""
    results = []
    for name, gate in GATES.items():
        limit = getattr(gates, name)
        if limit is None:
            continue
        value = figures.get(gate.figure)
        passed = value is not None and (value >= limit if gate.floor else value <= limit)
        results.append(GateResult(name, float(limit), None if value is None else float(value), passed))
    return results


def raise_on_missed(stage: str, results: list[GateResult], checked: dict | None = None) -> None:
    """`GateMissed` with one line per missed gate, carrying `checked` (the stage's figures for summary.json)."""
    missed = [result.message(stage) for result in results if not result.passed]
    if missed:
        raise GateMissed(missed, checked)

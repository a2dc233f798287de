"""What a stage's loss terms need from the stage, checked in one place: `align validate`, `align plan` and
`align train` (recipe loading, then the rows once read) and the trainer all call `term_conflicts`.

Each capability lives on the loss's registry entry (`align.losses.registry.LossInfo`): `needs_reference`,
`multi_negative`, `needs_shared_prefix`, `provides_rewards`; the reward-reporting term is `combine.reward_term`.
"""

from __future__ import annotations

from dataclasses import dataclass

from align.losses.combine import LossTerm
from align.losses.registry import loss_info, loss_names


@dataclass(frozen=True)
class StageFacts:
    """What is known of the stage: its reference (`base`, `previous`, `none`), whether trl precomputes reference
    log-probs, and the rows' K rejected answers per prompt (None until the rows are read)."""

    reference: str = "base"
    precompute_ref_log_probs: bool = False
    rejected_per_prompt: int | None = None


@dataclass(frozen=True)
class Conflict:
    """A loss term the stage cannot serve: `key` is where in the stage the fix goes (a key path below the stage),
    `message` one line saying what to do."""

    key: tuple[str, ...]
    message: str


def reference_free_losses() -> list[str]:
    """Registered losses that give preference rewards without a reference model."""
    return [name for name in loss_names() if not loss_info(name).needs_reference and loss_info(name).provides_rewards]


def term_conflicts(terms: list[LossTerm], facts: StageFacts) -> list[Conflict]:
    """Every way `terms` cannot train on a stage described by `facts` (empty when they can)."""
    conflicts = []
    needing = [t.name for t in terms if loss_info(t.name).needs_reference]
    if facts.reference == "none" and needing:
        free = ", ".join(reference_free_losses())
        message = f"none, but loss {needing[0]!r} compares with a reference model; use base or previous, or a "
        conflicts.append(Conflict(("reference",), message + f"reference-free loss ({free})"))
    shared = [t.name for t in terms if loss_info(t.name).needs_shared_prefix]
    if shared and facts.precompute_ref_log_probs:
        message = f"{shared[0]} needs the reference's shared-prefix log-probs, which are not cached; set it to false"
        conflicts.append(Conflict(("training", "precompute_ref_log_probs"), message))
    k = facts.rejected_per_prompt
    if shared and k is not None and k > 1:
        message = f"loss {shared[0]!r} compares one chosen with one rejected answer, but the rows have {k} rejected "
        conflicts.append(Conflict(("data",), message + "answers; use nca/infonca, or rows with a single `rejected`"))
    return conflicts

"""A weighted sum of registered losses, as a recipe's `loss: [{name: dpo, beta: 0.1}, {name: sft, weight: 0.2}]`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from align.losses.inputs import LossInputs
from align.losses.registry import LossOutput, loss_info


@dataclass(frozen=True)
class LossTerm:
    """One term of a combined loss: a registered name, its weight, hyper-parameter overrides, and `rewards`: this
    term's rewards are the ones reported (needed only when several terms provide rewards)."""

    name: str
    weight: float = 1.0
    params: dict = field(default_factory=dict)
    rewards: bool = False

    def __post_init__(self):
        info = loss_info(self.name)
        unknown = set(self.params) - set(info.defaults)
        if unknown:
            known = ", ".join(sorted(info.defaults)) or "none"
            raise ValueError(f"loss {self.name!r} has no parameter {sorted(unknown)}; its parameters: {known}")


@dataclass
class CombinedLoss:
    """losses (B,), the weighted sum; rewards from the reward term (`reward_term`); each term's mean loss, detached,
    by name."""

    losses: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor
    components: dict[str, torch.Tensor]


def reward_term(terms: list[LossTerm]) -> int:
    """Index of the term whose rewards a combined loss reports: the one marked `rewards`, else the only term whose
    loss provides preference rewards (an `sft` term does not), else the first term when none does.

    `ValueError` (one line) when several terms are marked, or several provide rewards and none is marked: which
    term's rewards the metrics and gates measure is never left to list order.
    """
    marked = [i for i, t in enumerate(terms) if t.rewards]
    if len(marked) > 1:
        raise ValueError(f"only one loss term can set `rewards: true`; {len(marked)} do")
    if marked:
        return marked[0]
    providing = [i for i, t in enumerate(terms) if loss_info(t.name).provides_rewards]
    if len(providing) > 1:
        names = ", ".join(terms[i].name for i in providing)
        raise ValueError(f"terms {names} all give preference rewards: set `rewards: true` on the one to report")
    return providing[0] if providing else 0


def needs_reference(terms: list[LossTerm]) -> bool:
    """Whether any term reads reference log-probs (if none does, the reference pass is skipped)."""
    return any(loss_info(t.name).needs_reference for t in terms)


def as_pairs(fn, inputs: LossInputs, params: dict) -> LossOutput:
    """A pairwise loss on K negatives: the K pairs (chosen, rejected_k), loss averaged over k.

    The call sees B·K pairs (`LossInputs.as_pairs`); losses come back as the mean over the K pairs (B,), chosen
    rewards from the first pair (B,), rejected rewards (B, K).
    """
    batch_size, k = inputs.policy_rejected_logps.shape
    out = fn(inputs.as_pairs(), **params)
    return LossOutput(
        out.losses.view(batch_size, k).mean(dim=1),
        out.chosen_rewards.view(batch_size, k)[:, 0],
        out.rejected_rewards.view(batch_size, k),
    )


def combine_losses(terms: list[LossTerm], inputs: LossInputs) -> CombinedLoss:
    """Evaluate every term on `inputs` and sum them with their weights.

    With K negatives (rejected tensors of shape (B, K)), losses registered as `multi_negative` see them whole; the
    others see K pairs (`as_pairs`).
    """
    if not terms:
        raise ValueError("at least one loss term is needed")
    total = None
    reported = reward_term(terms)
    rewards: LossOutput | None = None
    components = {}
    for index, term in enumerate(terms):
        info = loss_info(term.name)
        if inputs.several_negatives and not info.multi_negative:
            out = as_pairs(info.fn, inputs, term.params)
        else:
            out = info.fn(inputs, **term.params)
        total = term.weight * out.losses if total is None else total + term.weight * out.losses
        components[term.name] = out.losses.detach().mean()
        rewards = out if index == reported else rewards
    return CombinedLoss(total, rewards.chosen_rewards, rewards.rejected_rewards, components)

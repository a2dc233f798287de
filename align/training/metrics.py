"""Per-batch preference metrics: trl's `rewards/*` and `logps/*` keys plus length telemetry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from align.losses import CombinedLoss, LossInputs


def metric_inputs(inputs: LossInputs) -> list[torch.Tensor]:
    """The loss inputs `preference_metrics` reads after the result, detached, in its argument order."""
    tensors = (inputs.policy_chosen_logps, inputs.policy_rejected_logps, inputs.chosen_lengths, inputs.rejected_lengths)
    return [tensor.detach() for tensor in tensors]


@dataclass
class MicroBatchState:
    """A training batch run as several parts: `share` = the running part's rows ÷ the batch's `rows`; each part's
    detached result and metric inputs are kept so the batch's metrics are computed once, over all its rows."""

    rows: int
    share: float = 1.0
    results: list[CombinedLoss] = field(default_factory=list)
    inputs: list[list[torch.Tensor]] = field(default_factory=list)

    def add(self, result: CombinedLoss, inputs: list[torch.Tensor]) -> None:
        detached = CombinedLoss(
            result.losses.detach(),
            result.chosen_rewards,
            result.rejected_rewards,
            {name: value.detach() * self.share for name, value in result.components.items()},
        )
        self.results.append(detached)
        self.inputs.append(inputs)

    def joined(self) -> tuple[CombinedLoss, list[torch.Tensor]]:
        """The whole batch's result (component means weighted by rows) and metric inputs."""
        results = self.results
        joined = CombinedLoss(
            torch.cat([r.losses for r in results]),
            torch.cat([r.chosen_rewards for r in results]),
            torch.cat([r.rejected_rewards for r in results]),
            {name: sum(r.components[name] for r in results) for name in results[0].components},
        )
        return joined, [torch.cat(column) for column in zip(*self.inputs, strict=True)]


def length_reward_correlation(margins: torch.Tensor, length_diff: torch.Tensor) -> float:
    """Pearson correlation of reward margins with chosen−rejected length differences (tokens); 0 if undefined.

    The length-exploitation warning light: strongly positive means the model is rewarded for longer chosen answers,
    strongly negative for shorter ones, whatever their content.
    """
    if margins.numel() < 2:
        return 0.0
    x = margins.double() - margins.double().mean()
    y = length_diff.double() - length_diff.double().mean()
    denominator = x.norm() * y.norm()
    return float((x * y).sum() / denominator) if denominator > 0 else 0.0


def preference_metrics(
    result: CombinedLoss,
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    chosen_lengths: torch.Tensor,
    rejected_lengths: torch.Tensor,
    gather: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
) -> dict[str, float]:
    """Metrics for one batch, gathered across processes with `gather` (identity on one process).

    Rewards with K negatives per prompt are compared against each negative; lengths are completion token counts.
    """
    chosen_rewards = gather(result.chosen_rewards)
    rejected_rewards = gather(result.rejected_rewards)
    if rejected_rewards.dim() == 2:
        margins_per_negative = chosen_rewards.unsqueeze(1) - rejected_rewards
        margins = margins_per_negative.mean(dim=1)
        accuracy = (margins_per_negative > 0).float().mean()
    else:
        margins = chosen_rewards - rejected_rewards
        accuracy = (margins > 0).float().mean()
    chosen_lengths = gather(chosen_lengths).float()
    rejected_lengths = gather(rejected_lengths).float()
    rejected_mean_length = rejected_lengths.mean(dim=1) if rejected_lengths.dim() == 2 else rejected_lengths
    metrics = {
        "rewards/chosen": chosen_rewards.mean().item(),
        "rewards/rejected": rejected_rewards.mean().item(),
        "rewards/accuracies": accuracy.item(),
        "rewards/margins": margins.mean().item(),
        "logps/chosen": gather(policy_chosen_logps).mean().item(),
        "logps/rejected": gather(policy_rejected_logps).mean().item(),
        "lengths/chosen": chosen_lengths.mean().item(),
        "lengths/rejected": rejected_lengths.mean().item(),
        "lengths/chosen_shorter_frac": (chosen_lengths < rejected_mean_length).float().mean().item(),
        "rewards/length_corr": length_reward_correlation(margins, chosen_lengths - rejected_mean_length),
    }
    if len(result.components) > 1:
        for name, value in result.components.items():
            metrics[f"loss/{name}"] = gather(value.reshape(1)).mean().item()
    return metrics

"""Likelihood terms that are added to a contrastive loss (or used alone)."""

from __future__ import annotations

import torch

from align.losses.registry import LossOutput, as_lengths, register_loss


@register_loss("sft", needs_reference=False, provides_rewards=False)
def sft_loss(
    *,
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    chosen_lengths: torch.Tensor,
    rejected_lengths: torch.Tensor,
    **_,
) -> LossOutput:
    """SFT term: −π_c / len_c, the chosen completion's mean token negative log-likelihood.

    The "RPO" regulariser of Pang et al. 2024 ("Iterative Reasoning Preference Optimization") when weighted and added
    to DPO. Shapes: (B,) → losses (B,); rewards are the mean token log-probs π/len of chosen and rejected, (B,).
    """
    chosen_mean = policy_chosen_logps / as_lengths(chosen_lengths)
    rejected_mean = policy_rejected_logps / as_lengths(rejected_lengths)
    return LossOutput(-chosen_mean, chosen_mean.detach(), rejected_mean.detach())

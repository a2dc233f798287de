"""Likelihood terms that are added to a contrastive loss (or used alone)."""

from __future__ import annotations

from align.losses.inputs import LossInputs
from align.losses.registry import LossOutput, as_lengths, register_loss


@register_loss("sft", needs_reference=False, provides_rewards=False)
def sft_loss(inputs: LossInputs) -> LossOutput:
    """SFT term: −π_c / len_c, the chosen completion's mean token negative log-likelihood.

    The "RPO" regulariser of Pang et al. 2024 ("Iterative Reasoning Preference Optimization") when weighted and added
    to DPO. Reads π and lengths from `inputs` (`LossInputs`), (B,) → losses (B,); rewards are the mean token
    log-probs π/len of chosen and rejected, (B,).
    """
    chosen_lengths, rejected_lengths = inputs.lengths()
    chosen_mean = inputs.policy_chosen_logps / as_lengths(chosen_lengths)
    rejected_mean = inputs.policy_rejected_logps / as_lengths(rejected_lengths)
    return LossOutput(-chosen_mean, chosen_mean.detach(), rejected_mean.detach())

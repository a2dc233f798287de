"""Noise-contrastive losses: one chosen answer against one or K rejected answers per prompt.

r = β·(π − ref) is the implicit reward of each answer (π, ref: log-probs summed over completion tokens). The rejected
tensors may be (B,) (one negative, the pairwise case) or (B, K); rewards come back in the shape they went in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from align.losses.inputs import LossInputs
from align.losses.preference import _logratios
from align.losses.registry import LossOutput, register_loss


def _as_negatives(rejected: torch.Tensor) -> torch.Tensor:
    """Rejected rewards as (B, K): a pairwise (B,) batch is K = 1."""
    return rejected.unsqueeze(-1) if rejected.dim() == 1 else rejected


@register_loss("nca", needs_reference=True, multi_negative=True)
def nca_loss(inputs: LossInputs, *, beta: float = 0.01) -> LossOutput:
    """NCA: −log σ(r_c) − ½·log σ(−r_c) − ½·mean_k log σ(−r_k), r = β·(π − ref).

    Chen et al. 2024, "Noise Contrastive Alignment of Language Models with Explicit Rewards" (NCA, the preference
    form; trl's "nca_pair" for K = 1). Each reward is classified against 0 on its own rather than only against the
    other answer, so the chosen answer's likelihood is pushed up in absolute terms instead of drifting down as in DPO.
    With K > 1 this keeps the pairwise ½/½ weighting and averages the negatives; the paper's K-response form instead
    puts 1/(K+1) on every answer's −log σ(−r) term (the two agree at K = 1).
    Reads π and ref from `inputs` (`LossInputs`): chosen (B,), rejected (B,) or (B, K) → losses (B,); rewards r_c
    (B,) and r_k in the rejected's shape.
    β (default 0.01, the authors' training scripts; trl's nca_pair inherits DPO's 0.1): NCA compares rewards with 0,
    not with each other, so β sets how far each answer may move from the reference before the loss saturates.
    """
    chosen, rejected = _logratios(inputs)
    chosen_rewards, rejected_rewards = beta * chosen, beta * rejected
    negatives = F.logsigmoid(-_as_negatives(rejected_rewards)).mean(dim=-1)
    losses = -F.logsigmoid(chosen_rewards) - 0.5 * F.logsigmoid(-chosen_rewards) - 0.5 * negatives
    return LossOutput(losses, chosen_rewards.detach(), rejected_rewards.detach())


@register_loss("infonca", needs_reference=True, multi_negative=True)
def infonca_loss(inputs: LossInputs, *, beta: float = 0.1) -> LossOutput:
    """InfoNCA: −log(e^{r_c} / (e^{r_c} + Σ_k e^{r_k})), r = β·(π − ref).

    Chen et al. 2024, "Noise Contrastive Alignment of Language Models with Explicit Rewards" (InfoNCA with a one-hot
    label on the chosen answer): cross-entropy of picking the chosen answer among all K + 1. With K = 1 it is
    −log σ(r_c − r_r), exactly DPO. Computed as logsumexp − r_c, which never overflows.
    Reads π and ref from `inputs` (`LossInputs`): chosen (B,), rejected (B,) or (B, K) → losses (B,); rewards r_c
    (B,) and r_k in the rejected's shape.
    β (default 0.1, so that K = 1 matches `dpo`'s default; the authors' scripts use 0.01 for both): as in DPO.
    """
    chosen, rejected = _logratios(inputs)
    chosen_rewards, rejected_rewards = beta * chosen, beta * rejected
    logits = torch.cat([chosen_rewards.unsqueeze(-1), _as_negatives(rejected_rewards)], dim=-1)
    losses = torch.logsumexp(logits, dim=-1) - chosen_rewards
    return LossOutput(losses, chosen_rewards.detach(), rejected_rewards.detach())

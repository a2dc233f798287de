"""Losses on the reference-relative log-ratio margin h = (π_c − ref_c) − (π_r − ref_r).

π and ref are log-probs summed over completion tokens; rewards are the implicit DPO rewards β·(π − ref).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from align.losses.inputs import LossInputs
from align.losses.registry import LossOutput, register_loss


def _logratios(inputs: LossInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """(π_c − ref_c, π_r − ref_r) in the rejected's shape; `ValueError` without reference log-probs."""
    ref_chosen, ref_rejected = inputs.reference()
    return inputs.policy_chosen_logps - ref_chosen, inputs.policy_rejected_logps - ref_rejected


@register_loss("dpo", needs_reference=True)
def dpo_loss(inputs: LossInputs, *, beta: float = 0.1) -> LossOutput:
    """DPO: −log σ(β·h), h = (π_c − ref_c) − (π_r − ref_r).

    Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is Secretly a Reward Model", eq. 7.
    Reads π and ref from `inputs` (`LossInputs`), all (B,) → losses (B,); rewards β·(π − ref), (B,).
    β (default 0.1) is the KL-penalty strength.
    """
    chosen, rejected = _logratios(inputs)
    losses = -F.logsigmoid(beta * (chosen - rejected))
    return LossOutput(losses, (beta * chosen).detach(), (beta * rejected).detach())

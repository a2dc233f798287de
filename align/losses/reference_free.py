"""Preference losses that need no reference model: the trainer skips the reference forward pass for them.

π are the policy's log-probs summed over completion tokens; π/len is the mean token log-prob (lengths are
completion token counts, clamped to at least 1 by `as_lengths`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from align.losses.inputs import LossInputs
from align.losses.registry import LossOutput, as_lengths, register_loss

# ORPO's odds p/(1−p) diverge as the mean token probability p = e^m → 1. Capping m at −1e-6 (p ≤ 0.999999, log odds
# ≤ ~13.8) keeps log(1 − e^m) finite for m = 0 exactly (or slightly above 0 from rounding); the odds-ratio term is
# saturated long before that, so the cap changes nothing a real model reaches.
_MAX_MEAN_LOGP = -1e-6


@register_loss("simpo", needs_reference=False)
def simpo_loss(inputs: LossInputs, *, beta: float = 2.0, gamma: float = 1.0) -> LossOutput:
    """SimPO: −log σ(β·π_c/len_c − β·π_r/len_r − γ).

    Meng et al. 2024, "SimPO: Simple Preference Optimization with a Reference-Free Reward", eq. 6: the reward is the
    length-normalised log-prob β·π/len (the quantity generation ranks by), and γ is a target reward margin.
    Reads π and lengths from `inputs` (`LossInputs`), all (B,) → losses (B,); rewards β·π/len, (B,).
    β (default 2.0) and γ (default 1.0, i.e. γ/β = 0.5): the authors' released setting for Llama-3-8B Base. Other
    models were trained with β up to 10 and other γ/β ratios, so tune both per model; β has to be large because
    mean token log-prob margins are small.
    """
    chosen_lengths, rejected_lengths = inputs.lengths()
    chosen = beta * inputs.policy_chosen_logps / as_lengths(chosen_lengths)
    rejected = beta * inputs.policy_rejected_logps / as_lengths(rejected_lengths)
    losses = -F.logsigmoid(chosen - rejected - gamma)
    return LossOutput(losses, chosen.detach(), rejected.detach())


@register_loss("cpo", needs_reference=False)
def cpo_loss(inputs: LossInputs, *, beta: float = 0.1) -> LossOutput:
    """CPO: −log σ(β·(π_c − π_r)) − π_c/len_c.

    Xu et al. 2024, "Contrastive Preference Optimization: Pushing the Boundaries of LLM Performance in Machine
    Translation": DPO with a uniform reference (which drops out of the margin) plus a behaviour-cloning NLL term on
    the chosen answer, which keeps the policy near the preferred data in place of a reference model. The paper writes
    the NLL per sequence; we use the mean token NLL (trl's CPOTrainer averages over tokens too) so that it does not
    scale with answer length.
    Reads π and lengths from `inputs` (`LossInputs`), all (B,) → losses (B,); rewards β·π, (B,).
    β (default 0.1, the paper's and trl's value): the preference term's temperature.
    """
    policy_chosen, policy_rejected = inputs.policy_chosen_logps, inputs.policy_rejected_logps
    logits = beta * (policy_chosen - policy_rejected)
    losses = -F.logsigmoid(logits) - policy_chosen / as_lengths(inputs.lengths()[0])
    return LossOutput(losses, (beta * policy_chosen).detach(), (beta * policy_rejected).detach())


def _log_odds(mean_logps: torch.Tensor) -> torch.Tensor:
    """log(p / (1 − p)) for p = e^m, computed from m without forming p / (1 − p)."""
    mean_logps = mean_logps.clamp(max=_MAX_MEAN_LOGP)
    return mean_logps - torch.log1p(-torch.exp(mean_logps))


@register_loss("orpo", needs_reference=False)
def orpo_loss(inputs: LossInputs, *, odds_ratio_weight: float = 0.1) -> LossOutput:
    """ORPO: −m_c − λ·log σ(log odds_c − log odds_r), m = π/len, log odds = m − log(1 − e^m).

    Hong et al. 2024, "ORPO: Monolithic Preference Optimization without Reference Model", eqs. 6–7: SFT on the
    chosen answer plus a penalty on the odds ratio of the chosen over the rejected answer, with odds taken on the
    mean token probability e^m. m is clamped just below 0 inside the odds only (see _MAX_MEAN_LOGP) so the loss stays
    finite when a completion is predicted with probability ~1.
    Reads π and lengths from `inputs` (`LossInputs`), all (B,) → losses (B,); rewards λ·m, (B,), as trl's
    ORPOTrainer logs them.
    odds_ratio_weight λ (default 0.1, the paper's value; trl calls it `beta`): weight of the odds-ratio term.
    """
    chosen_lengths, rejected_lengths = inputs.lengths()
    chosen = inputs.policy_chosen_logps / as_lengths(chosen_lengths)
    rejected = inputs.policy_rejected_logps / as_lengths(rejected_lengths)
    odds_ratio_term = F.logsigmoid(_log_odds(chosen) - _log_odds(rejected))
    losses = -chosen - odds_ratio_weight * odds_ratio_term
    return LossOutput(losses, (odds_ratio_weight * chosen).detach(), (odds_ratio_weight * rejected).detach())

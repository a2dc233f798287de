"""DPO variants that keep the policy from buying preference with length.

h = (π_c − ref_c) − (π_r − ref_r) as in `dpo`; π and ref are log-probs summed over completion tokens, lengths are
completion token counts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from align.losses.inputs import LossInputs
from align.losses.preference import _logratios
from align.losses.registry import UNIT, LossOutput, as_lengths, register_loss


@register_loss("rdpo", needs_reference=True)
def rdpo_loss(inputs: LossInputs, *, beta: float = 0.1, alpha: float = 0.01) -> LossOutput:
    """R-DPO: −log σ(β·h + α·(len_c − len_r)), h = (π_c − ref_c) − (π_r − ref_r).

    Park et al. 2024, "Disentangling Length from Quality in Direct Preference Optimization" (length-regularised DPO).
    The paper maximises reward − α·|y| under DPO's KL constraint, so the true reward is β·log(π/ref) + α·|y| and the
    Bradley–Terry logit gains +α·(|y_c| − |y_r|): the term is added, not subtracted. When the chosen answer is longer,
    length already "explains" part of the preference and the policy is asked for a smaller h; when it is shorter, for a
    larger one, so the implicit reward β·(π − ref) learns the preference net of α per token. Subtracting the term
    would reward length instead. Reads π, ref and lengths from `inputs` (`LossInputs`), all (B,) → losses (B,);
    rewards β·(π − ref), (B,), like `dpo`.
    β (default 0.1): as in DPO. α (default 0.01, inside the ~0.005–0.05 range used for R-DPO; the best value depends
    on the dataset's length gap): logit per token of length difference, e.g. 0.5 for a 50-token gap, the same
    weight as 5 nats of h at β=0.1.
    """
    chosen, rejected = _logratios(inputs)
    chosen_lengths, rejected_lengths = inputs.lengths()
    # A difference, not a per-token average: raw counts (no clamp to 1), in the log-probs' dtype.
    length_gap = chosen_lengths.to(chosen.dtype) - rejected_lengths.to(chosen.dtype)
    losses = -F.logsigmoid(beta * (chosen - rejected) + alpha * length_gap)
    return LossOutput(losses, (beta * chosen).detach(), (beta * rejected).detach())


@register_loss("lndpo", needs_reference=True)
def lndpo_loss(inputs: LossInputs, *, beta: float = 2.0) -> LossOutput:
    """LN-DPO: −log σ(β·((π_c − ref_c)/len_c − (π_r − ref_r)/len_r)).

    Length-normalised DPO (Ahrabian et al. 2024, "A Practical Analysis of Human Alignment with *PO"; trl's
    "sigmoid_norm"): per-token log-ratios, so a long answer cannot win by accumulating many small per-token gains.
    Reads π, ref and lengths from `inputs` (`LossInputs`), all (B,) → losses (B,); rewards β·(π − ref)/len, (B,).
    β (default 2.0, the scale SimPO uses for length-normalised log-probs): per-token margins are ~len times smaller
    than summed ones (~100× for 100-token answers), so DPO's 0.1 would leave the loss in its flat linear regime.
    β ≈ 0.1·(typical length) gives the same initial gradient per token as DPO at 0.1; 2.0 matches ~20-token answers,
    raise it (5–10) for long completions.
    """
    chosen, rejected = _logratios(inputs)
    chosen_lengths, rejected_lengths = inputs.lengths()
    chosen = chosen / as_lengths(chosen_lengths)
    rejected = rejected / as_lengths(rejected_lengths)
    losses = -F.logsigmoid(beta * (chosen - rejected))
    return LossOutput(losses, (beta * chosen).detach(), (beta * rejected).detach())


def _shared_prefix_logratios(inputs: LossInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """(π_c − ref_c, π_r − ref_r) over the shared prefix; a clear error if any of its sums is missing."""
    policy_chosen, policy_rejected, ref_chosen, ref_rejected = inputs.shared_prefix()
    return policy_chosen - ref_chosen, policy_rejected - ref_rejected


@register_loss("lddpo", needs_reference=True, needs_shared_prefix=True, ranges={"alpha": UNIT})
def lddpo_loss(inputs: LossInputs, *, beta: float = 0.1, alpha: float = 0.5) -> LossOutput:
    """LD-DPO: −log σ(β·h̃), h̃ = DPO's h on log-probs l̃ = shared + α·(full − shared).

    Liu et al. 2024, "Length Desensitization in Direct Preference Optimization" (LD-DPO). For each pair the longer
    response's log-prob counts its first min(len_c, len_r) tokens fully and its extra tokens scaled by α, so its tail
    no longer dominates the margin; the shorter response is unchanged (its shared sum is its full sum, so the formula
    leaves it as is). Reads π, ref and their four shared-prefix sums from `inputs` (`LossInputs`; a ValueError
    names any the trainer did not compute), all (B,) → losses (B,); rewards β·(l̃_π − l̃_ref), the desensitised
    implicit rewards, (B,).
    β (default 0.1): as in DPO. α in [0, 1] (default 0.5, the middle of the range the paper tunes per model):
    α = 1 is exactly DPO, α = 0 compares the shared prefixes only.
    """
    chosen, rejected = _logratios(inputs)
    shared_chosen, shared_rejected = _shared_prefix_logratios(inputs)
    # l̃_π − l̃_ref is linear in the log-probs, so it can be built from log-ratios. Written as full − (1−α)·tail so
    # that α = 1 multiplies the tail by exactly 0 and reproduces DPO bit for bit.
    chosen = chosen - (1 - alpha) * (chosen - shared_chosen)
    rejected = rejected - (1 - alpha) * (rejected - shared_rejected)
    losses = -F.logsigmoid(beta * (chosen - rejected))
    return LossOutput(losses, (beta * chosen).detach(), (beta * rejected).detach())

"""Other shapes of loss on DPO's reference-relative margin h = (π_c − ref_c) − (π_r − ref_r).

π and ref are log-probs summed over completion tokens. Like `dpo`, every loss here reports the implicit rewards
β·(π − ref), so reward metrics stay comparable when switching between them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from align.losses.inputs import LossInputs
from align.losses.preference import _logratios
from align.losses.registry import Interval, LossOutput, register_loss


@register_loss("ipo", needs_reference=True)
def ipo_loss(inputs: LossInputs, *, beta: float = 0.1) -> LossOutput:
    """IPO: (h − 1/(2β))², h = (π_c − ref_c) − (π_r − ref_r).

    Azar et al. 2023, "A General Theoretical Paradigm to Understand Learning from Human Preferences", the empirical
    IPO loss (eq. 17), where β is the paper's regularisation τ. Regressing h onto a finite target 1/(2β) instead of
    pushing it to +∞ (as −log σ does) keeps the policy from overfitting deterministic preferences.
    Reads π and ref from `inputs` (`LossInputs`), all (B,) → losses (B,); rewards β·(π − ref), (B,).
    β (default 0.1, trl's default; the paper gives no LLM default): larger β → smaller target margin, closer to ref.
    Note: trl divides each log-ratio by its completion length before taking h (per-token margins); we follow the
    paper's sequence-level form as written above, so h is in summed nats and 1/(2β) = 5 nats at the default.
    """
    chosen, rejected = _logratios(inputs)
    losses = (chosen - rejected - 1 / (2 * beta)) ** 2
    return LossOutput(losses, (beta * chosen).detach(), (beta * rejected).detach())


@register_loss("hinge", needs_reference=True)
def hinge_loss(inputs: LossInputs, *, beta: float = 0.1) -> LossOutput:
    """Hinge: max(0, 1 − β·h), h = (π_c − ref_c) − (π_r − ref_r).

    The rank-calibration loss of SLiC (Zhao et al. 2023, "SLiC-HF: Sequence Likelihood Calibration with Human
    Feedback"), max(0, δ − log π(y_c) + log π(y_r)), taken on reference-relative log-ratios as trl's "hinge" does.
    Since max(0, 1 − β·h) = β·max(0, 1/β − h), the margin is δ = 1/β: pairs already separated by 1/β nats get no
    gradient at all. Reads π and ref from `inputs` (`LossInputs`), all (B,) → losses (B,); rewards β·(π − ref),
    (B,).
    β (default 0.1, as trl): margin 1/β = 10 nats of summed log-ratio.
    """
    chosen, rejected = _logratios(inputs)
    losses = torch.relu(1 - beta * (chosen - rejected))
    return LossOutput(losses, (beta * chosen).detach(), (beta * rejected).detach())


@register_loss("robust", needs_reference=True, ranges={"label_smoothing": Interval(0.0, 0.5, open_high=True)})
def robust_loss(inputs: LossInputs, *, beta: float = 0.1, label_smoothing: float = 0.1) -> LossOutput:
    """Robust (conservative DPO): −(1−ε)·log σ(β·h) − ε·log σ(−β·h), h = (π_c − ref_c) − (π_r − ref_r).

    cDPO of Mitchell 2023, "A note on DPO with noisy preferences & relationship to IPO": DPO with the label smoothed,
    i.e. trained as if each preference were flipped with probability ε. The loss is minimised at a finite margin
    β·h = log((1−ε)/ε), so, like IPO, it stops pushing pairs apart. This is NOT the unbiased "robust DPO" (rDPO) of
    Chowdhury et al. 2024, "Provably Robust DPO" (which subtracts the flipped term and divides by 1 − 2ε), and so
    not trl's loss_type="robust" either; it is trl's "sigmoid" loss with label_smoothing=ε.
    Reads π and ref from `inputs` (`LossInputs`), all (B,) → losses (B,); rewards β·(π − ref), (B,).
    β (default 0.1): as in DPO. label_smoothing ε (default 0.1, the flip rate Chowdhury et al. and trl's docs
    suggest for noisy preference data; ε = 0 is exactly DPO, ε must stay below 0.5 or the label inverts).
    """
    chosen, rejected = _logratios(inputs)
    logits = beta * (chosen - rejected)
    losses = -(1 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)
    return LossOutput(losses, (beta * chosen).detach(), (beta * rejected).detach())

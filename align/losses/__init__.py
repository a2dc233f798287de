"""Pure loss functions, registered by name. No transformers or trl imports in this package.

    from align.losses import LossInputs, get_loss, loss_names, register_loss
    inputs = LossInputs(policy_chosen_logps=..., policy_rejected_logps=...,
                        ref_chosen_logps=..., ref_rejected_logps=...)
    out = get_loss("dpo")(inputs, beta=0.1)

Adding a loss: one function `fn(inputs: LossInputs, *, hyper=default)` in a family module with
`@register_loss(name, needs_reference=...)`, one test.
"""

from align.losses import (  # noqa: F401  (register the built-in losses)
    length,
    margin,
    multi_negative,
    preference,
    reference_free,
    supervised,
)
from align.losses.capabilities import Conflict, StageFacts, term_conflicts
from align.losses.combine import CombinedLoss, LossTerm, combine_losses, needs_reference, reward_term
from align.losses.inputs import LossInputs
from align.losses.registry import Interval, LossInfo, LossOutput, get_loss, loss_info, loss_names, register_loss

__all__ = [
    "CombinedLoss",
    "Conflict",
    "Interval",
    "StageFacts",
    "LossInfo",
    "LossInputs",
    "LossOutput",
    "LossTerm",
    "combine_losses",
    "get_loss",
    "loss_info",
    "loss_names",
    "needs_reference",
    "register_loss",
    "reward_term",
    "term_conflicts",
]

"""Which batch layout and log-prob path a preference stage uses for a model, and why: said once, recorded per stage."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from align.training.families import head_scaling, packed_refusal, text_config

logger = logging.getLogger(__name__)

COMPLETION_HEAD = "completion-only head"
FULL_LOGITS = "full logits"


@dataclass(frozen=True)
class LayoutChoice:
    """batch_layout: `packed` or `padded`; why: the clause that forced padded when packed was asked for (None
    otherwise); log_probs: `completion-only head`, or `full logits` for families not on the allow-list."""

    batch_layout: str
    why: str | None
    log_probs: str

    def as_summary(self) -> dict:
        return asdict(self)


def choose_layout(model, requested: str, aux_loss_coef: float = 0.0) -> LayoutChoice:
    """The layout for `model` (a `PreTrainedModel`, not the PEFT wrapper): the requested one where align has proven
    it exact for this family, else padded; a log line says what was given up and why."""
    log_probs = COMPLETION_HEAD if head_scaling(model) is not None else FULL_LOGITS
    if log_probs == FULL_LOGITS:
        logger.warning(
            "model type %r is not on align's list of proven families: log-probs come from the model's full "
            "logits (exact, slower)",
            text_config(model).model_type,
        )
    if requested != "packed":
        return LayoutChoice(requested, None, log_probs)
    why = packed_refusal(model, aux_loss_coef)
    if why is not None:
        logger.warning("packed batches are off for %s: %s; using the padded layout", type(model).__name__, why)
        return LayoutChoice("padded", why, log_probs)
    return LayoutChoice("packed", None, log_probs)

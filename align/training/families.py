"""Which model families align's fast paths are proven exact for: an allow-list, one row per family.

Two fast paths depend on the architecture:
- the **completion-only head** (`align.training.logprobs`) projects only the scored hidden states through the LM
  head; it must apply the family's own logit scaling and soft-capping (`HeadScaling`). A family not listed here gets
  the plain path instead: the model's own forward, full logits, log-probs taken from them (what trl does).
- the **packed layout** (`align.training.packing` + `align.training.segment_attention`) needs every token-mixing layer
  to be an attention layer routed through transformers' `AttentionInterface` with arguments the segment backend
  reproduces (causal, sliding window, attention soft-cap, attention sinks). Only families the conformance matrix
  (`tests/training/test_conformance.py`) proves equal to plain Hugging Face forward passes are listed as packable.

Adding a family is one `FamilySupport` row here plus one row in the conformance matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from align.training.private_api import supports_attention_backend

# The layer types (transformers' `config.layer_types`) the segment attention backend reproduces.
ATTENTION_LAYER_TYPES = frozenset({"full_attention", "sliding_attention"})


@dataclass(frozen=True)
class HeadScaling:
    """How a family turns `lm_head(hidden)` into the logits it samples from: z = softcap·tanh(multiplier·u / softcap)
    (no tanh when `softcap` is None), u the head's output."""

    multiplier: float = 1.0
    softcap: float | None = None


def _softcapped(config) -> HeadScaling:
    return HeadScaling(softcap=getattr(config, "final_logit_softcapping", None) or None)


def _cohere(config) -> HeadScaling:
    return HeadScaling(multiplier=float(config.logit_scale))


def _granite(config) -> HeadScaling:
    return HeadScaling(multiplier=1.0 / float(config.logits_scaling))


@dataclass(frozen=True)
class FamilySupport:
    """One model family (transformers `model_type`): its head scaling, and whether packed batches are proven exact."""

    head: Callable[[object], HeadScaling] = _softcapped
    packed: bool = True


FAMILIES: dict[str, FamilySupport] = {
    "llama": FamilySupport(),
    "mistral": FamilySupport(),
    "mixtral": FamilySupport(),
    "qwen2": FamilySupport(),
    "qwen2_moe": FamilySupport(),
    "qwen3": FamilySupport(),
    "qwen3_moe": FamilySupport(),
    "gemma": FamilySupport(),
    "gemma2": FamilySupport(),
    "gemma3_text": FamilySupport(),
    "phi3": FamilySupport(),
    "olmo2": FamilySupport(),
    "cohere": FamilySupport(head=_cohere),
    "granite": FamilySupport(head=_granite),
    "gpt_oss": FamilySupport(),
    # Hybrid: short convolutions mix tokens across a packed row; the padded layout (right padding, causal
    # convolutions) is exact.
    "lfm2": FamilySupport(packed=False),
}


def text_config(model):
    """The language model's config (multimodal wrappers keep it under `text_config`)."""
    return model.config.get_text_config()


def head_scaling(model) -> HeadScaling | None:
    """The family's head scaling, or None when the family is not on the allow-list (use full logits)."""
    config = text_config(model)
    family = FAMILIES.get(config.model_type)
    return family.head(config) if family is not None else None


def router_aux_loss_coef(model, override: float | None) -> float:
    """The MoE load-balancing loss weight trl's `DPOTrainer` uses: `override` (DPOConfig.router_aux_loss_coef) if
    set, else the config's own; 0.0 for models that return no router logits."""
    config = text_config(model)
    if not hasattr(config, "output_router_logits"):
        return 0.0
    return float(getattr(config, "router_aux_loss_coef", 0.0) if override is None else override)


def packed_refusal(model, aux_loss_coef: float = 0.0) -> str | None:
    """Why `model` cannot run packed batches exactly (one clause), or None when it can."""
    config = text_config(model)
    family = FAMILIES.get(config.model_type)
    if family is None:
        return f"model type {config.model_type!r} is not on align's list of families proven exact when packed"
    if not family.packed:
        return f"{config.model_type} layers that are not attention (e.g. convolutions) would mix packed answers"
    if not supports_attention_backend(model):
        return f"{type(model).__name__} does not route attention through transformers' AttentionInterface"
    layer_types = set(getattr(config, "layer_types", None) or ())
    if layer_types - ATTENTION_LAYER_TYPES:
        return f"layer types {sorted(layer_types - ATTENTION_LAYER_TYPES)} are not attention layers align can pack"
    if aux_loss_coef:
        return f"the MoE router loss (router_aux_loss_coef {aux_loss_coef}) is defined over trl's padded rows"
    return None

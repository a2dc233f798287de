"""The conformance matrix's model families: tiny random models built from transformers' own config classes.

Each row is a family as users meet it, with the features that make it differ from Llama switched on at sizes the test
sequences reach (windows shorter than the sequences, soft-caps that bite, logit scales far from 1, router losses on).
Adding a family is one row here; `tests/training/test_conformance.py` runs every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import transformers

COMMON = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    max_position_embeddings=256,
    tie_word_embeddings=False,
)


@dataclass(frozen=True)
class Family:
    """config: transformers config class name; options: its non-default settings; attention: the implementation the
    family needs (`eager` where SDPA cannot express the family's attention, e.g. soft-capped scores or sinks)."""

    config: str
    options: dict = field(default_factory=dict)
    attention: str = "sdpa"


FAMILIES: dict[str, Family] = {
    "llama": Family("LlamaConfig"),
    "mistral-window": Family("MistralConfig", {"sliding_window": 4}),
    "qwen2": Family("Qwen2Config"),
    "qwen3": Family("Qwen3Config"),
    "gemma2-softcap-window": Family(
        "Gemma2Config",
        {
            "sliding_window": 4,
            "attn_logit_softcapping": 2.0,
            "final_logit_softcapping": 3.0,
            "query_pre_attn_scalar": 8,
        },
        attention="eager",
    ),
    "gemma3-window": Family(
        "Gemma3TextConfig", {"sliding_window": 4, "layer_types": ["sliding_attention", "full_attention"]}
    ),
    "phi3": Family("Phi3Config", {"pad_token_id": 0}),
    "cohere-logit-scale": Family("CohereConfig", {"logit_scale": 0.3}),
    "granite-logits-scaling": Family(
        "GraniteConfig",
        {"logits_scaling": 4.0, "embedding_multiplier": 2.0, "residual_multiplier": 0.5, "attention_multiplier": 0.2},
    ),
    "mixtral-router-loss": Family(
        "MixtralConfig",
        {"num_local_experts": 4, "num_experts_per_tok": 2, "router_aux_loss_coef": 0.05, "sliding_window": 4},
    ),
    "gpt-oss-sinks-window": Family(
        "GptOssConfig",
        {
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
            "router_aux_loss_coef": 0.0,
            "sliding_window": 4,
            "layer_types": ["sliding_attention", "full_attention"],
        },
        attention="eager",
    ),  # fmt: skip
    "olmo2": Family("Olmo2Config"),
    "lfm2-hybrid": Family("Lfm2Config", {"layer_types": ["conv", "full_attention"], "pad_token_id": 0}),
}


def build_family(name: str, vocab_size: int, seed: int = 0):
    """A tiny random fp32 model of family `name` with `vocab_size` tokens (weights drawn with `seed`)."""
    family = FAMILIES[name]
    config_class = getattr(transformers, family.config)
    config = config_class(**{**COMMON, "vocab_size": vocab_size, **family.options})
    config._attn_implementation = family.attention
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    _perturb_zero_parameters(model, seed)
    return model.eval()


def _perturb_zero_parameters(model, seed: int) -> None:
    """Random init leaves some parameters at exactly zero or one (norm weights, attention sinks): give them small
    random values so a path that ignored them would show."""
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name or "sinks" in name or name.endswith("bias"):
                parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))

"""Tiny policies whose answers are worth comparing: the tiny model with its matrices redrawn, with or without a LoRA
adapter whose B is not zero."""

from __future__ import annotations

import torch

from align.models import load_model


def redrawn_base(tiny_model_dir):
    """The tiny model (fp32) with its matrices redrawn at std 0.15: at its initial 0.02 it answers every prompt with
    one repeated token, which would make token-for-token comparisons trivially pass."""
    model = load_model(str(tiny_model_dir), dtype="float32")
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.normal_(0, 0.15)
    return model


def redrawn_lora(tiny_model_dir, **lora):
    """`redrawn_base` wrapped in a seeded LoRA adapter (r 4, alpha 8, all linear layers, B drawn too, so the adapter
    changes the answers); `lora` adds LoraConfig arguments (e.g. `use_dora=True`)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False, **lora)
    return get_peft_model(redrawn_base(tiny_model_dir), config)

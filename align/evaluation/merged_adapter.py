"""LoRA adapters folded into their base weights while a model generates, and the base weights put back untouched.

Under LoRA every targeted linear layer runs its base matmul plus two small ones, an add and a scaling; on a CPU that
costs more than the base matmul for a 135M model's decode steps. Folding W + B·A·scale into one weight for the
duration of generation removes that. peft's `merge_adapter()`/`unmerge_adapter()` would add then subtract the delta
in place, which does not restore the weights bit for bit, and training continues after probes — so here the merged
weight is a new tensor and the original tensor object is put back afterwards, exact by construction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def _lora_linears(model) -> list:
    """The model's peft LoRA linear layers (empty when peft is absent or the model carries no LoRA)."""
    try:
        from peft.tuners.lora.layer import Linear as LoraLinear
    except ImportError:
        return []
    return [module for module in model.modules() if type(module) is LoraLinear]


def _foldable(layer, shared: set[int]) -> bool:
    """Whether `layer`'s active adapters are plain LoRA on a full-precision, unsharded, untied weight."""
    base = layer.get_base_layer()
    weight = getattr(base, "weight", None)
    adapters = [name for name in layer.active_adapters if name in layer.lora_A]
    return (
        isinstance(base, torch.nn.Linear)
        and type(weight) is torch.nn.Parameter
        and weight.dtype in (torch.float32, torch.float16, torch.bfloat16)
        and tuple(weight.shape) == (base.out_features, base.in_features)
        and id(weight) not in shared
        and not any(name in layer.lora_variant or layer.lora_bias.get(name) for name in adapters)
    )


def _shared_parameters(model) -> set[int]:
    """Ids of parameters that more than one module holds (tied weights): swapping one would swap the others."""
    seen: set[int] = set()
    shared: set[int] = set()
    for _, parameter in model.named_parameters(remove_duplicate=False):
        (shared if id(parameter) in seen else seen).add(id(parameter))
    return shared


@contextmanager
def adapter_folded(model) -> Iterator[bool]:
    """Within the block, every active LoRA adapter of `model` runs folded into its base weight; yields whether it was.

    Nothing is folded (the block runs the adapter as it is, yielding False) when the adapters are disabled
    (`disable_adapter()`), already merged, or any LoRA layer is not plain LoRA on a full-precision linear weight
    (DoRA and other variants, LoRA bias, quantised, sharded or tied weights): folding only some layers would still
    be exact, but the rule is kept simple. On exit every base weight is the very tensor it was before.
    """
    layers = _lora_linears(model)
    active = [layer for layer in layers if not layer.disable_adapters and not layer.merged]
    shared = _shared_parameters(model) if active else set()
    if not active or len(active) != len(layers) or not all(_foldable(layer, shared) for layer in active):
        yield False
        return
    originals = []
    try:
        with torch.no_grad():
            for layer in active:
                weight = layer.get_base_layer().weight
                adapters = [name for name in layer.active_adapters if name in layer.lora_A]
                folded = weight.data.clone()
                for name in adapters:
                    folded += layer.get_delta_weight(name).to(folded.dtype)
                originals.append((layer, weight.data))
                weight.data = folded
                # peft's forward skips the LoRA path of a layer whose adapters are listed as merged.
                layer.merged_adapters = list(adapters)
        yield True
    finally:
        for layer, original in originals:
            layer.get_base_layer().weight.data = original
            layer.merged_adapters = []

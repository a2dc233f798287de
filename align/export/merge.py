"""Merge a LoRA adapter into its base model and save a plain transformers model folder (safetensors, config,
generation config), which `AutoModelForCausalLM` loads with neither align nor peft.

Memory: the base model is loaded once, in the export dtype (transformers builds it on the meta device and fills in
the weights, never two copies), the adapter's low-rank factors are added into the base weights layer by layer
(`merge_and_unload`), and the LoRA layers are removed: the peak is one copy of the model plus the adapter.
"""

from __future__ import annotations

import logging
from pathlib import Path

from align.errors import AlignError, Problem
from align.export.source import ExportSource
from align.models.loading import DTYPES, load_model, unreachable_as_user_error

logger = logging.getLogger(__name__)
#: The dtypes an export may be written in; `auto` is not one: a file's dtype should not depend on the machine.
EXPORT_DTYPES = tuple(dtype for dtype in DTYPES if dtype != "auto")


def base_dtype(source: ExportSource) -> str:
    """The dtype the base model's config records (`float32` when it records none): the default export dtype."""
    from transformers import AutoConfig

    from align.models import resolve_model_path

    with unreachable_as_user_error(source.base_model):
        config = AutoConfig.from_pretrained(
            resolve_model_path(source.base_model), trust_remote_code=source.trust_remote_code
        )
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    name = str(dtype).removeprefix("torch.") if dtype is not None else "float32"
    return name if name in EXPORT_DTYPES else "float32"


def merge_to_folder(source: ExportSource, dtype: str, target: Path, max_shard_size: str) -> None:
    """Write the base model with `source`'s adapter merged in, in `dtype`, to `target` (weights in safetensors
    shards of at most `max_shard_size`, e.g. `5GB`). The base is loaded unquantised even if training was QLoRA."""
    from peft import PeftModel

    if dtype not in EXPORT_DTYPES:
        raise AlignError(Problem("--dtype", f"{dtype!r}: use one of {', '.join(EXPORT_DTYPES)}"))
    base = load_model(source.base_model, dtype, trust_remote_code=source.trust_remote_code)
    try:
        model = PeftModel.from_pretrained(base, source.adapter_dir)
    except (RuntimeError, ValueError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        message = f"the adapter does not fit the base model {source.base_model!r} ({first}); name the model it was "
        raise AlignError(Problem(str(source.adapter_dir), message + "trained on with --model")) from None
    merged = model.merge_and_unload()
    merged.save_pretrained(target, max_shard_size=max_shard_size)
    logger.info("merged %s into %s (%s) → %s", source.adapter_dir, source.base_model, dtype, target)

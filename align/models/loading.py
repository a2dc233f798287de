"""Load a causal LM and its tokenizer from a short name, local folder or Hub id."""

from __future__ import annotations

import contextlib
import logging

from align.errors import AlignError
from align.models.registry import resolve_model_path, short_model_names

logger = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "bfloat16", "float16")


def pick_dtype(dtype: str):
    """`auto` is bf16 on a CUDA device that supports it and fp32 elsewhere (bf16 matmuls are slow on most CPUs)."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    if dtype not in DTYPES:
        raise AlignError(f"model.dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    return getattr(torch, dtype)


@contextlib.contextmanager
def unreachable_as_user_error(name: str):
    """A model that cannot be found (no such folder, Hub id unreachable or offline, gated) becomes one line naming
    it, not a transformers traceback."""
    try:
        yield
    except OSError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = (
            f"model {name!r} cannot be loaded: {first} (short names: "
            f"{', '.join(short_model_names())}; otherwise a local model folder, or a Hub id on a machine "
            "that can reach the Hub)"
        )
        raise AlignError(message) from None


def load_tokenizer(name: str, trust_remote_code: bool = False):
    """The tokenizer, with a pad token (the EOS token when the model has none) and a chat template checked."""
    from transformers import AutoTokenizer

    path = resolve_model_path(name)
    with unreachable_as_user_error(name):
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def check_quantization_support() -> None:
    """`AlignError` (one line) unless this machine can load a bitsandbytes-quantised model: a CUDA GPU and the
    `bitsandbytes` package. Checked before anything is downloaded or loaded."""
    import torch

    if not torch.cuda.is_available():
        raise AlignError(
            "model.quantization (QLoRA) needs a CUDA GPU and none is visible; train on a GPU machine, or remove "
            "model.quantization (or --set model.quantization.load_in_4bit=false) to train unquantised here"
        )
    try:
        import bitsandbytes  # noqa: F401
    except Exception as exc:  # ImportError, or a build that fails to find its CUDA library
        raise AlignError(
            f"model.quantization (QLoRA) needs bitsandbytes, which does not import here ({type(exc).__name__}); "
            "install it with `pip install bitsandbytes`"
        ) from None


def _quantized_device_map() -> dict | None:
    """Each process loads its own quantised copy onto its GPU (one GPU, or DDP). Under FSDP or DeepSpeed the
    launcher places the weights, so no device map is given."""
    import os

    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        return None
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        return None
    return {"": f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"}


def load_model(
    name: str,
    dtype: str = "auto",
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    *,
    quantization: dict | None = None,
    gradient_checkpointing: bool = False,
):
    """A causal LM in `dtype`, weights from safetensors only (never a pickle).

    `quantization` (the recipe's `model.quantization`) loads the weights quantised with bitsandbytes through
    transformers' `BitsAndBytesConfig` and prepares the model for QLoRA with peft's `prepare_model_for_kbit_training`
    (frozen base, norms in fp32); it raises `AlignError` at once on a machine without a CUDA GPU or bitsandbytes.
    `gradient_checkpointing` is passed to that preparation; leave it off under align's trainers, which turn
    checkpointing (and the input gradients it needs with a frozen base) on per stage from
    `training.activation_checkpointing`.
    """
    from align.recipe.trl_configs import make_quantization_config, quantization_enabled

    quantized = quantization_enabled(quantization)
    if quantized:
        check_quantization_support()
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(name)
    if trust_remote_code:
        logger.warning("trust_remote_code is on for %s: its own Python code will run", name)
    kwargs = {"dtype": pick_dtype(dtype), "trust_remote_code": trust_remote_code, "use_safetensors": True}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if quantized:
        kwargs["quantization_config"] = make_quantization_config(quantization)
        device_map = _quantized_device_map()
        if device_map is not None:
            kwargs["device_map"] = device_map
    with unreachable_as_user_error(name):
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if quantized:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    return model

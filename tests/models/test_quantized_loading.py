"""`load_model(..., quantization=...)`: QLoRA loading, checked without a GPU or bitsandbytes."""

import sys
import types

import pytest
import torch

from align.errors import AlignError
from align.models import load_model

NF4 = {
    "load_in_4bit": True,
    "bnb_4bit_quant_type": "nf4",
    "bnb_4bit_compute_dtype": "bfloat16",
    "bnb_4bit_use_double_quant": True,
}


def _one_line(info) -> str:
    (problem,) = info.value.problems
    assert "\n" not in str(info.value)
    return problem.message


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a CUDA GPU")
def test_quantization_without_a_gpu_is_a_one_line_user_error(tmp_path):
    """If this fails, a QLoRA recipe started on a CPU machine dies in a bitsandbytes/transformers traceback (or
    after resolving and downloading the model) instead of one line saying it needs a CUDA GPU."""
    missing = str(tmp_path / "never-resolved")  # the check comes first: no model path is resolved or downloaded
    with pytest.raises(AlignError) as info:
        load_model(missing, quantization=NF4)
    message = _one_line(info)
    assert "needs a CUDA GPU" in message and "model.quantization" in message


def test_quantization_without_bitsandbytes_says_what_to_install(monkeypatch, tmp_path):
    """If this fails, a GPU machine without bitsandbytes gets an ImportError traceback instead of the install line."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # `import bitsandbytes` raises ImportError
    with pytest.raises(AlignError) as info:
        load_model(str(tmp_path / "never-resolved"), quantization=NF4)
    assert "pip install bitsandbytes" in _one_line(info)


def test_quantized_load_passes_bitsandbytes_config_and_prepares_for_kbit_training(monkeypatch, tiny_model_dir):
    """If this fails, `model.quantization` no longer reaches `from_pretrained(quantization_config=...)` on the
    process's own GPU, or the loaded model skips peft's `prepare_model_for_kbit_training` (QLoRA then trains with
    half-precision norms and an unfrozen base)."""
    import peft
    from transformers import AutoModelForCausalLM

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "bitsandbytes", types.ModuleType("bitsandbytes"))
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    seen = {}
    sentinel = object()

    def fake_from_pretrained(path, **kwargs):
        seen["path"], seen["kwargs"] = path, kwargs
        return sentinel

    def fake_prepare(model, use_gradient_checkpointing=True, **kwargs):
        seen["prepared"] = (model, use_gradient_checkpointing)
        return model

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", fake_from_pretrained)
    monkeypatch.setattr(peft, "prepare_model_for_kbit_training", fake_prepare)
    assert load_model(str(tiny_model_dir), dtype="bfloat16", quantization=NF4) is sentinel
    kwargs = seen["kwargs"]
    config = kwargs["quantization_config"]
    assert type(config).__name__ == "BitsAndBytesConfig" and config.load_in_4bit is True
    assert config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_compute_dtype == torch.bfloat16
    assert kwargs["device_map"] == {"": "cuda:1"} and kwargs["dtype"] == torch.bfloat16
    assert kwargs["use_safetensors"] is True and kwargs["trust_remote_code"] is False
    # align's trainers turn checkpointing on per stage; load_model leaves it to them unless asked.
    assert seen["prepared"] == (sentinel, False)


def test_no_quantization_loads_as_before(monkeypatch, tiny_model_dir):
    """If this fails, the new keyword changed plain loading: an empty or switched-off `model.quantization` must not
    need a GPU or bitsandbytes, nor pass a quantization config."""
    from transformers import AutoModelForCausalLM

    calls = []
    real = AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(
        AutoModelForCausalLM, "from_pretrained", lambda path, **kw: calls.append(kw) or real(path, **kw)
    )
    for quantization in (None, {}, {**NF4, "load_in_4bit": False}):
        model = load_model(str(tiny_model_dir), dtype="float32", quantization=quantization)
        assert not getattr(model, "is_loaded_in_4bit", False)
    assert all("quantization_config" not in kw and "device_map" not in kw for kw in calls) and len(calls) == 3

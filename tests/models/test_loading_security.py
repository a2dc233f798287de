"""What loading a model will and will not do: remote code only when asked (and then logged), weights only from
safetensors (a pickled `pytorch_model.bin` is refused, never unpickled)."""

import logging
import shutil

import pytest

from align.errors import AlignError
from align.models import load_model


def test_trust_remote_code_is_logged_when_on_and_off_by_default(tiny_model_dir, caplog):
    """If this fails, a recipe could run a model repository's Python code without anyone seeing it in the log."""
    with caplog.at_level(logging.WARNING, logger="align.models.loading"):
        load_model(str(tiny_model_dir))
    assert "trust_remote_code" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="align.models.loading"):
        load_model(str(tiny_model_dir), trust_remote_code=True)
    assert "trust_remote_code is on" in caplog.text


def test_pickled_weights_are_refused(tiny_model_dir, tmp_path, monkeypatch):
    """A model folder holding only a pickle checkpoint must not be loaded (unpickling runs arbitrary code): one-line
    error, and torch.load is never called. If this fails, a downloaded model could execute code on load."""
    import torch
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    assert (folder / "pytorch_model.bin").exists() and not list(folder.glob("*.safetensors"))

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load was called on a pickle checkpoint")

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(AlignError, match="cannot be loaded") as raised:
        load_model(str(folder))
    assert "\n" not in str(raised.value)

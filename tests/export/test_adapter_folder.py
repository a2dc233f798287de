"""How an adapter names its base model so that another machine finds it, and the rewrite of its config."""

import json

from align.export.adapter_folder import portable_base_name, set_base_model
from align.models import hub_model_id


def test_short_names_map_to_their_hub_id_and_folders_to_absolute_paths(tmp_path, monkeypatch):
    """SmolLM2's short name becomes its Hub id (without preparing the local copy), a folder its absolute path, a
    Hub id stays. If this fails, adapters name `~/.cache/align/models/...` and load nowhere else."""
    assert hub_model_id("smollm2-135m-instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert portable_base_name("smollm2-135m-instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert hub_model_id("tiny-llama") is None and hub_model_id("org/model") is None
    (tmp_path / "base").mkdir()
    monkeypatch.chdir(tmp_path)
    assert portable_base_name("base") == str(tmp_path / "base")
    assert portable_base_name("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"


def test_set_base_model_keeps_the_rest_of_the_config(tmp_path):
    """Only `base_model_name_or_path` changes. If this fails, the rewrite damages the LoRA settings."""
    config = {"base_model_name_or_path": "/cache/x", "r": 8, "target_modules": ["q_proj"], "peft_type": "LORA"}
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    set_base_model(tmp_path, "org/x")
    assert json.loads((tmp_path / "adapter_config.json").read_text()) == {**config, "base_model_name_or_path": "org/x"}

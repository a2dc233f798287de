"""Run a recipe's stages in order, carrying the adapter forward, and write the run's summary."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from align.evaluation.probes import BaseAnswers, load_probe_prompts, run_probes
from align.gates import GateMissed, check_gates, raise_on_missed
from align.models import load_model, load_tokenizer
from align.outputs import RunOutputs
from align.recipe import LoadedRecipe
from align.runtime import process_state
from align.selection import stage_rows

logger = logging.getLogger(__name__)


def run_recipe(loaded: LoadedRecipe, output_dir: str | Path | None = None) -> dict[str, Any]:
    """Train every stage of `loaded`; return the summary also written to `OUTPUT/summary.json`."""
    from transformers import set_seed

    from align.training.stages import run_stage

    recipe = loaded.recipe
    state = process_state()
    outputs = RunOutputs(output_dir or recipe.output_dir or Path("runs") / recipe.name)
    if state.is_main_process:
        outputs.prepare()
        outputs.write_resolved_recipe(loaded.resolved_raw())
    set_seed(recipe.seed)
    tokenizer = load_tokenizer(recipe.model.name, recipe.model.trust_remote_code)
    model = load_model(
        recipe.model.name, recipe.model.dtype, recipe.model.attn_implementation, recipe.model.trust_remote_code
    )
    summary: dict[str, Any] = {
        "recipe": recipe.name,
        "source": loaded.source,
        "model": recipe.model.name,
        "world_size": state.num_processes,
        "output_dir": str(outputs.root),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "stages": [],
    }
    step_offset = 0
    base_answers = BaseAnswers()
    for stage in recipe.stages:
        train_rows, eval_rows, row_counts = stage_rows(loaded, stage, recipe.seed)
        if stage.adapter == "new" and hasattr(model, "peft_config"):
            # Remove the LoRA layers without merging them: the base weights are untouched, so a fresh adapter starts
            # from the base model; the previous adapters are already saved in their stage folders.
            model = model.unload()
        logger.info("stage %s: %d training rows, %d held-out rows", stage.name, len(train_rows), len(eval_rows))
        result = run_stage(
            stage=stage,
            model=model,
            tokenizer=tokenizer,
            train_rows=train_rows,
            eval_rows=eval_rows,
            training=loaded.stage_training(stage),
            peft=recipe.peft,
            seed=recipe.seed,
            report_to=recipe.report_to,
            run_name=recipe.name,
            outputs=outputs,
            step_offset=step_offset,
        )
        model = result.model
        step_offset += result.steps
        stage_summary = {**result.summary, "rows": row_counts}
        summary["stages"].append(stage_summary)
        try:
            checked = check_stage(loaded, stage, model, tokenizer, outputs, base_answers, step_offset,
                                  result.summary["eval"])  # fmt: skip
            stage_summary.update(checked)
        except GateMissed as missed:
            stage_summary.update(missed.checked, gates_missed=missed.lines)
            if state.is_main_process:
                outputs.write_summary({**summary, "status": "gate_missed", "failed_stage": stage.name})
            raise
        if state.is_main_process:
            outputs.write_summary({**summary, "status": "running"})
    summary["total_steps"] = step_offset
    summary["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    summary["status"] = "finished"
    if state.is_main_process:
        outputs.write_summary(summary)
    return summary


def check_stage(loaded: LoadedRecipe, stage, model, tokenizer, outputs: RunOutputs, base_answers: BaseAnswers,
                step: int, eval_figures: dict[str, float]) -> dict[str, Any]:  # fmt: skip
    """After a stage: answer its probe prompts (figures to metrics.jsonl, answers to OUTPUT/<stage>/probes.jsonl),
    then check its gates against those and the held-out `eval_figures`; `GateMissed` when one fails. Returns the
    stage's `probe` figures and `gates` results for summary.json."""
    ev = stage.eval
    figures: dict[str, float] = {}
    if ev.prompts:
        path = loaded.resolve_path(ev.prompts)
        rows = load_probe_prompts(path, ev.max_prompts)
        key = (str(path), len(rows), ev.max_new_tokens)
        figures, records = run_probes(model, tokenizer, rows, ev.max_new_tokens, ev.batch_size, base_answers, key)
        if process_state().is_main_process:
            outputs.append_metrics({"stage": stage.name, "step": step, **figures})
            outputs.write_jsonl(outputs.stage_dir(stage.name) / "probes.jsonl", records)
        logger.info("stage %s probes: %s", stage.name, {k: round(v, 4) for k, v in figures.items()})
    results = check_gates(ev.gates, {**eval_figures, **figures})
    checked = {"probe": figures, "gates": [r.to_dict() for r in results]}
    try:
        raise_on_missed(stage.name, results)
    except GateMissed as missed:
        missed.checked = checked
        raise
    return checked

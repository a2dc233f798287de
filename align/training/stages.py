"""Run one stage: rows → datasets → the stage kind's trl trainer (`align.stages`) → train → held-out eval →
adapter → summary."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset

from align.engines import gathered_adapter_state
from align.errors import AlignError
from align.outputs import RunOutputs
from align.recipe import StageConfig
from align.recipe.trl_configs import make_lora_config, make_trainer_config
from align.run_context import RunContext
from align.selection import StageRows
from align.stages import stage_kind
from align.tracking import MetricsJsonlCallback
from align.training.guards import NonFiniteLossGuard
from align.training.progress_callback import label_progress
from align.training.sharding import sharding_report

logger = logging.getLogger(__name__)


@dataclass
class StageResult:
    """What a finished stage reports to `summary.json`, plus the trained model to carry forward."""

    model: Any
    steps: int
    summary: dict[str, Any] = field(default_factory=dict)
    #: The adapter's whole tensors when the model was sharded (FSDP2, ZeRO-3), else None: the next stage then starts
    #: from an unsharded copy (`align.curriculum`), as an engine cannot wrap an already sharded model again.
    adapter_state: dict | None = None


def rows_to_dataset(rows: list, tokenizer) -> Dataset:
    """Conversational examples when the tokenizer has a chat template (so training sees what inference sees)."""
    if tokenizer.chat_template:
        return Dataset.from_list([row.to_conversational() for row in rows])
    return Dataset.from_list([row.to_text() for row in rows])


def _last_train_loss(log_history: list[dict]) -> float | None:
    for entry in reversed(log_history):
        if "loss" in entry and "eval_loss" not in entry:
            return float(entry["loss"])
    return None


def _eval_figures(metrics: dict[str, float]) -> dict[str, float]:
    """Held-out figures without the `eval_` prefix or runtime noise, e.g. `rewards/accuracies`."""
    skip = ("runtime", "samples_per_second", "steps_per_second", "epoch")
    return {
        key.removeprefix("eval_"): value
        for key, value in metrics.items()
        if not key.endswith(skip) and isinstance(value, (int, float)) and math.isfinite(value)
    }


def _drop_reference_adapter(peft_model) -> None:
    """Remove trl's frozen `ref` copy of a carried-over adapter (it is rebuilt by the next stage that wants it)."""
    if "ref" in peft_model.peft_config:
        peft_model.delete_adapter("ref")
        peft_model.set_adapter("default")


def _stage_summary(
    stage: StageConfig,
    trainer,
    train_output,
    eval_metrics: dict,
    n_train: int,
    n_eval: int,
    step_offset: int,
    outputs: RunOutputs,
) -> dict[str, Any]:
    """What a finished stage reports to summary.json."""
    steps = trainer.state.global_step
    return {
        "name": stage.name,
        "kind": stage.kind,
        "steps": steps,
        "first_step": step_offset + 1,
        "last_step": step_offset + steps,
        "train_rows": n_train,
        "eval_rows": n_eval,
        "loss": stage_kind(stage.kind).loss_terms(stage),
        "final_train_loss": _last_train_loss(trainer.state.log_history),
        "mean_train_loss": train_output.training_loss,
        "train_runtime_s": train_output.metrics.get("train_runtime"),
        "eval": _eval_figures(eval_metrics),
        "adapter": str(outputs.adapter_dir(stage.name)),
    }


def _warn_shared_rows(stage: str, sharding: dict) -> None:
    if sharding["world_size"] > 1 and sharding["rows_on_several_ranks"]:
        logger.warning(
            "stage %s: %d training rows were seen by more than one process (rows not divisible by the "
            "global batch are repeated to fill it)",
            stage,
            sharding["rows_on_several_ranks"],
        )


def run_stage(
    run: RunContext,
    stage: StageConfig,
    model,
    rows: StageRows,
    training: dict,
    step_offset: int,
    resume_from: str | None = None,
) -> StageResult:
    """Train `model` (a base model, or a `PeftModel` carried from the previous stage) on one stage's `rows` with its
    merged `training` mapping; steps are numbered from `step_offset` + 1. `resume_from`, a checkpoint folder of this
    stage, restores its adapter, optimizer, scheduler, RNG and data position first."""
    outputs, tokenizer = run.outputs, run.tokenizer
    train_rows, eval_rows = rows.train, rows.held_out
    if stage.data.order != "shuffled":
        # The rows arrive in training order (file order, or easy → hard): the sampler must not reshuffle them.
        training = {**training, "train_sampling_strategy": "sequential"}
    config = make_trainer_config(
        stage.kind,
        training,
        output_dir=str(outputs.checkpoints_dir(stage.name)),
        seed=run.seed,
        report_to="none",  # transformers' integrations off: the run's tracker gets every row via MetricsJsonlCallback
        run_name=f"{run.run_name}/{stage.name}",
    )
    if eval_rows and config.per_device_eval_batch_size > len(eval_rows):
        config.per_device_eval_batch_size = len(eval_rows)
    is_peft = hasattr(model, "peft_config")
    kind = stage_kind(stage.kind)
    trainer = kind.build_trainer(
        stage,
        model=model,
        args=config,
        train_dataset=rows_to_dataset(train_rows, tokenizer),
        eval_dataset=rows_to_dataset(eval_rows, tokenizer) if eval_rows else None,
        processing_class=tokenizer,
        peft_config=None if is_peft else make_lora_config(run.peft),
        callbacks=[
            MetricsJsonlCallback(outputs, stage.name, step_offset, run.tracker),
            NonFiniteLossGuard(stage.name, step_offset),
        ],
    )
    label_progress(trainer, stage.name)
    if trainer.accelerator.is_main_process:
        outputs.write_trainer_config(stage.name, trainer.args)  # as trained; rotation deletes training_args.bin
    peft_model = trainer.model
    dropped = kind.dropped_rows(stage, len(train_rows) + len(eval_rows), trainer)
    if stage.reference != "previous":
        # trl keeps a frozen copy of a carried-over adapter as the reference; `base` means adapters off instead, and
        # `none` (reference-free losses only) needs no copy at all.
        _drop_reference_adapter(peft_model)
    train_output = trainer.train(resume_from_checkpoint=resume_from)
    if not math.isfinite(train_output.training_loss):
        raise AlignError(
            f"stage {stage.name!r}: the training loss is {train_output.training_loss}; lower the learning rate"
        )
    eval_metrics = trainer.evaluate() if eval_rows else {}
    sharding = sharding_report(trainer.rows_seen, trainer.accelerator) if hasattr(trainer, "rows_seen") else None
    # Gathering a sharded adapter (FSDP2, ZeRO-3) is a collective: every process takes part, the main one writes.
    adapter_state = gathered_adapter_state(peft_model)
    if trainer.accelerator.is_main_process:
        outputs.save_adapter(peft_model, stage.name, adapter_state)
    _drop_reference_adapter(peft_model)
    steps = trainer.state.global_step
    summary = _stage_summary(
        stage, trainer, train_output, eval_metrics, len(train_rows), len(eval_rows), step_offset, outputs
    )
    summary["dropped_prompt_over_max_length"] = dropped
    if hasattr(trainer, "layout"):
        summary["layout"] = trainer.layout.as_summary()
    summary["engine"] = str(trainer.accelerator.distributed_type.value)  # NO, MULTI_CPU, MULTI_GPU, FSDP, DEEPSPEED
    if sharding is not None:
        summary["data_parallel"] = sharding
        _warn_shared_rows(stage.name, sharding)
    return StageResult(model=peft_model, steps=steps, summary=summary, adapter_state=adapter_state)

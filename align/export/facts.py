"""What a model card says about one stage of a run, read from the run's summary and resolved recipe.

Both are plain mappings (`summary.json`, `recipe.resolved.yaml`, or the same objects in memory while the run goes
on), so a card can be written during training and again at export time from the files alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from align.errors import AlignError, Problem

#: The trainer settings a card lists (when the recipe sets them); the rest are trl's defaults.
CARD_TRAINING_KEYS = (
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "warmup_ratio",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "weight_decay",
    "max_grad_norm",
    "optim",
)
CARD_PEFT_KEYS = ("r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora", "use_dora")


@dataclass(frozen=True)
class StageFacts:
    """One stage of a run, as its model card reports it.

    Attributes:
        recipe: the recipe's name.
        base_model: the base model as the recipe named it (short name, folder or Hub id).
        stage, kind: the stage's name and kind (`sft`, `preference`, ...).
        position: the stage's 1-based place among `stage_names`, the recipe's stages in order.
        train_sources, eval_sources: where its rows came from (files by their last two path parts, or Hub ids).
        train_rows, eval_rows: rows trained on and held out.
        row_counts: the summary's `rows` counts (read, filtered, unused by the caps).
        losses: the loss terms, as the summary lists them.
        steps: optimizer steps of this stage.
        final_train_loss, mean_train_loss: the last logged and the mean training loss.
        training, peft: the trainer and LoRA settings the recipe set (stage over top level), and the seed.
        eval: held-out figures (`rewards/accuracies`, ...).
        probe: probe figures of the adapter (`probe/X`) and of the base model (`probe/base_X`).
        gates: each gate's `gate`, `limit`, `value`, `passed`.
        gates_missed: one line per missed gate (the run stopped after this stage).
    """

    recipe: str
    base_model: str
    stage: str
    kind: str
    position: int
    stage_names: tuple[str, ...]
    train_sources: tuple[str, ...] = ()
    eval_sources: tuple[str, ...] = ()
    train_rows: int = 0
    eval_rows: int = 0
    row_counts: dict[str, int] = field(default_factory=dict)
    losses: tuple[dict, ...] = ()
    steps: int = 0
    final_train_loss: float | None = None
    mean_train_loss: float | None = None
    training: dict[str, Any] = field(default_factory=dict)
    peft: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    eval: dict[str, float] = field(default_factory=dict)
    probe: dict[str, float] = field(default_factory=dict)
    gates: tuple[dict, ...] = ()
    gates_missed: tuple[str, ...] = ()


def _source_names(sources: Any) -> tuple[str, ...]:
    """Data sources by a name that does not publish the training machine's folders: a local file's last two path
    parts (`concise/train.jsonl`), a Hub dataset id as it is."""
    if not isinstance(sources, list):
        sources = [sources] if sources else []
    names = []
    for source in sources:
        path = source.get("path") if isinstance(source, dict) else source
        if isinstance(path, str):
            names.append("/".join(Path(path).parts[-2:]) if Path(path).is_absolute() else path)
    return tuple(names)


def _stage_summary(summary: dict, stage: str) -> dict:
    for entry in summary.get("stages") or []:
        if entry.get("name") == stage:
            return entry
    done = ", ".join(entry.get("name", "?") for entry in summary.get("stages") or []) or "none"
    raise AlignError(Problem("summary.json", f"stage {stage!r} has not finished in this run (finished: {done})"))


def stage_facts(summary: dict, raw_recipe: dict, stage: str) -> StageFacts:
    """The card facts of `stage` from a run's `summary` and its resolved recipe mapping `raw_recipe`."""
    entry = _stage_summary(summary, stage)
    raw_stages = raw_recipe.get("stages") or []
    names = tuple(str(raw.get("name")) for raw in raw_stages)
    raw_stage = raw_stages[names.index(stage)] if stage in names else {}
    data = raw_stage.get("data") or {}
    # The stage's settings over the recipe's, as `LoadedRecipe.stage_training` merges them for training.
    training = {**(raw_recipe.get("training") or {}), **(raw_stage.get("training") or {})}
    peft = raw_recipe.get("peft") or {}
    return StageFacts(
        recipe=str(summary.get("recipe") or raw_recipe.get("name")),
        base_model=str(summary.get("model") or (raw_recipe.get("model") or {}).get("name")),
        stage=stage,
        kind=str(entry.get("kind")),
        position=names.index(stage) + 1 if stage in names else len(summary.get("stages") or []),
        stage_names=names or (stage,),
        train_sources=_source_names(data.get("train")),
        eval_sources=_source_names(data.get("eval")),
        train_rows=int(entry.get("train_rows") or 0),
        eval_rows=int(entry.get("eval_rows") or 0),
        row_counts=dict(entry.get("rows") or {}),
        losses=tuple(entry.get("loss") or ()),
        steps=int(entry.get("steps") or 0),
        final_train_loss=entry.get("final_train_loss"),
        mean_train_loss=entry.get("mean_train_loss"),
        training={key: training[key] for key in CARD_TRAINING_KEYS if key in training},
        peft={key: peft[key] for key in CARD_PEFT_KEYS if key in peft},
        seed=raw_recipe.get("seed"),
        eval=dict(entry.get("eval") or {}),
        probe=dict(entry.get("probe") or {}),
        gates=tuple(entry.get("gates") or ()),
        gates_missed=tuple(entry.get("gates_missed") or ()),
    )

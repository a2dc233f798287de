"""`align plan`: what each stage of a recipe will do, before any training: rows, steps, loss, reference, tokens."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from align.recipe import LoadedRecipe, StageConfig
from align.recipe.trl_configs import planning_config
from align.runtime import world_size
from align.stages import stage_kind


@dataclass
class StagePlan:
    """One stage's plan. Tokens count prompt + completion(s) per row, capped at `max_length` per sequence."""

    name: str
    kind: str
    train_rows: int
    eval_rows: int
    steps: int
    loss: str
    reference: str
    train_tokens: int


def _sequence_tokens(tokenizer, prompt: str, answer: str, max_length: int | None) -> int:
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    if tokenizer.chat_template:
        ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
    else:
        ids = tokenizer(prompt + answer)["input_ids"]
    return min(len(ids), max_length) if max_length else len(ids)


def _row_tokens(tokenizer, row, max_length: int | None) -> int:
    """Tokens one row puts through the model per epoch: one sequence per answer (chosen and each rejected)."""
    if hasattr(row, "completion"):
        answers = [row.completion]
    else:
        answers = [row.chosen] + ([row.rejected] if isinstance(row.rejected, str) else list(row.rejected))
    return sum(_sequence_tokens(tokenizer, row.prompt, answer, max_length) for answer in answers)


def _steps(config, rows: int) -> int:
    if config.max_steps and config.max_steps > 0:
        return config.max_steps
    per_step = config.per_device_train_batch_size * config.gradient_accumulation_steps * world_size()
    return math.ceil(rows / per_step) * math.ceil(config.num_train_epochs)


def plan_stage(loaded: LoadedRecipe, stage: StageConfig, tokenizer) -> StagePlan:
    from align.selection import stage_rows

    train, held, _ = stage_rows(loaded, stage, loaded.recipe.seed)
    config = planning_config(stage.kind, loaded.stage_training(stage))
    epochs = math.ceil(config.num_train_epochs) if not (config.max_steps and config.max_steps > 0) else 1
    kind = stage_kind(stage.kind)
    return StagePlan(
        name=stage.name,
        kind=stage.kind,
        train_rows=len(train),
        eval_rows=len(held),
        steps=_steps(config, len(train)),
        loss=kind.loss_label(stage),
        reference=kind.reference_label(stage),
        train_tokens=epochs * sum(_row_tokens(tokenizer, row, config.max_length) for row in train),
    )


def plan_recipe(loaded: LoadedRecipe) -> list[StagePlan]:
    """Every stage's plan (reads the data and the tokenizer; loads no model weights)."""
    from align.models import load_tokenizer

    tokenizer = load_tokenizer(loaded.recipe.model.name, loaded.recipe.model.trust_remote_code)
    return [plan_stage(loaded, stage, tokenizer) for stage in loaded.recipe.stages]


def format_plan(plans: list[StagePlan]) -> str:
    """A fixed-width table, one stage per line, with a total."""
    header = ("stage", "kind", "rows", "eval", "steps", "loss", "reference", "tokens")
    lines = [
        [p.name, p.kind, str(p.train_rows), str(p.eval_rows), str(p.steps), p.loss, p.reference, f"{p.train_tokens:,}"]
        for p in plans
    ]
    lines.append(
        [
            "total",
            "",
            str(sum(p.train_rows for p in plans)),
            str(sum(p.eval_rows for p in plans)),
            str(sum(p.steps for p in plans)),
            "",
            "",
            f"{sum(p.train_tokens for p in plans):,}",
        ]
    )
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    render = lambda row: "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([render(header), render(["-" * w for w in widths]), *map(render, lines)])


def plans_as_dicts(plans: list[StagePlan]) -> list[dict]:
    return [asdict(p) for p in plans]

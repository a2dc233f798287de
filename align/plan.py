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
    """One stage's plan. Tokens count prompt + completion(s) per row, capped at `max_length` per sequence.

    A stage that samples its rows (`data.generate`) is planned at its most: `generated_rows` is the most rows its
    prompts can give (each generated answer counted at `max_new_tokens`), included in `train_rows`, `steps` and
    `train_tokens`, which are then upper bounds (`bound`)."""

    name: str
    kind: str
    train_rows: int
    eval_rows: int
    steps: int
    loss: str
    reference: str
    train_tokens: int
    generated_rows: int = 0

    @property
    def bound(self) -> bool:
        return self.generated_rows > 0


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


def _generated_bound(loaded: LoadedRecipe, stage: StageConfig, tokenizer, max_length: int | None) -> tuple[int, int]:
    """The most rows a stage's `data.generate` can give, and the most tokens they hold (every answer at its cap)."""
    from align.on_policy.prompts import load_prompt_rows

    settings = stage.data.generate
    prompts = load_prompt_rows(loaded.resolve_path(settings.prompts), settings.columns, settings.max_prompts)
    kind = stage_kind(stage.kind)
    rows = kind.generated_rows_bound(settings, len(prompts))
    answers = kind.generated_answers_per_row(settings)
    prompt_tokens = max(len(tokenizer(p.prompt)["input_ids"]) for p in prompts)
    sequence = prompt_tokens + settings.max_new_tokens
    return rows, rows * answers * (min(sequence, max_length) if max_length else sequence)


def plan_stage(loaded: LoadedRecipe, stage: StageConfig, tokenizer) -> StagePlan:
    from align.selection import stage_rows

    config = planning_config(stage.kind, loaded.stage_training(stage))
    train, held = stage_rows(loaded, stage, loaded.recipe.seed)[:2] if stage.data.train else ([], [])
    generated, generated_tokens = 0, 0
    if stage.data.generate is not None:
        generated, generated_tokens = _generated_bound(loaded, stage, tokenizer, config.max_length)
    epochs = math.ceil(config.num_train_epochs) if not (config.max_steps and config.max_steps > 0) else 1
    kind = stage_kind(stage.kind)
    tokens = sum(_row_tokens(tokenizer, row, config.max_length) for row in train) + generated_tokens
    return StagePlan(
        name=stage.name,
        kind=stage.kind,
        train_rows=len(train) + generated,
        eval_rows=len(held),
        steps=_steps(config, len(train) + generated),
        loss=kind.loss_label(stage),
        reference=kind.reference_label(stage),
        train_tokens=epochs * tokens,
        generated_rows=generated,
    )


def stage_steps(loaded: LoadedRecipe, stage: StageConfig, train_rows: int | None = None) -> int:
    """The optimizer steps `stage` takes on `train_rows` rows; without them, on its rows after filters plus the most
    its `data.generate` can give (an upper bound for such a stage). Reads the data, no tokenizer or model."""
    config = planning_config(stage.kind, loaded.stage_training(stage))
    if train_rows is None:
        from align.selection import stage_rows

        train_rows = len(stage_rows(loaded, stage, loaded.recipe.seed)[0]) if stage.data.train else 0
        settings = stage.data.generate
        if settings is not None:
            from align.on_policy.prompts import load_prompt_rows

            prompts = load_prompt_rows(loaded.resolve_path(settings.prompts), settings.columns, settings.max_prompts)
            train_rows += stage_kind(stage.kind).generated_rows_bound(settings, len(prompts))
    return _steps(config, train_rows)


def plan_recipe(loaded: LoadedRecipe) -> list[StagePlan]:
    """Every stage's plan (reads the data and the tokenizer; loads no model weights)."""
    from align.models import load_tokenizer

    tokenizer = load_tokenizer(loaded.recipe.model.name, loaded.recipe.model.trust_remote_code)
    return [plan_stage(loaded, stage, tokenizer) for stage in loaded.recipe.stages]


def _at_most(plan: StagePlan, cell: str) -> str:
    return f"≤{cell}" if plan.bound else cell


def format_plan(plans: list[StagePlan]) -> str:
    """A fixed-width table, one stage per line, with a total; `≤` marks upper bounds (stages that sample rows)."""
    header = ("stage", "kind", "rows", "eval", "steps", "loss", "reference", "tokens")
    lines = [
        [
            p.name,
            p.kind,
            _at_most(p, str(p.train_rows)),
            str(p.eval_rows),
            _at_most(p, str(p.steps)),
            p.loss,
            p.reference,
            _at_most(p, f"{p.train_tokens:,}"),
        ]
        for p in plans
    ]
    bound = "≤" if any(p.bound for p in plans) else ""
    lines.append(
        [
            "total",
            "",
            bound + str(sum(p.train_rows for p in plans)),
            str(sum(p.eval_rows for p in plans)),
            bound + str(sum(p.steps for p in plans)),
            "",
            "",
            bound + f"{sum(p.train_tokens for p in plans):,}",
        ]
    )
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    render = lambda row: "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([render(header), render(["-" * w for w in widths]), *map(render, lines)])


def plans_as_dicts(plans: list[StagePlan]) -> list[dict]:
    return [asdict(p) for p in plans]

"""`data.generate.rounds: R`: one stage becomes R stages, each sampling the adapter the one before it trained.

Rounds are ordinary stages to everything after recipe loading — their own output folder, summary entry,
checkpoints and resume point — so iterative on-policy training needs no machinery of its own.
"""

from __future__ import annotations

from dataclasses import replace

from align.recipe.schema import StageConfig, StageEvalConfig


def round_name(stage: str, number: int) -> str:
    """The name of round `number` (1-based) of a stage that has more rounds after it: `<stage>-round<number>`."""
    return f"{stage}-round{number}"


def expand_rounds(stages: list[StageConfig]) -> list[StageConfig]:
    """Every stage with `data.generate.rounds` R > 1 replaced by R stages.

    Rounds 1 … R−1 are named `<name>-round<r>` and have no probes or gates (the stage's result is the last round's);
    the last round keeps the stage's own name and `eval`. Each round samples once (`rounds: 1`); rounds after the
    first continue the adapter. Every other setting is kept, including `reference` (`previous` makes each round's
    reference the round before it, as iterative DPO does)."""
    out = []
    for stage in stages:
        settings = stage.data.generate
        if settings is None or settings.rounds <= 1:
            out.append(stage)
            continue
        data = replace(stage.data, generate=replace(settings, rounds=1))
        for number in range(1, settings.rounds + 1):
            # Round 1 starts as the stage says (a carried or a new adapter); later rounds continue the round before.
            adapter = stage.adapter if number == 1 else "continue"
            if number < settings.rounds:
                name, evaluation = round_name(stage.name, number), StageEvalConfig()
            else:
                name, evaluation = stage.name, stage.eval
            out.append(replace(stage, name=name, data=data, adapter=adapter, eval=evaluation))
    return out

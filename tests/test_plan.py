"""`align plan`: rows, steps and tokens per stage, matching what training will do."""

import json
from pathlib import Path

from align.cli import main
from align.plan import plan_recipe, stage_steps
from align.recipe import load_recipe

REPO = Path(__file__).resolve().parent.parent


def test_plan_matches_the_recipe(tiny_model_dir):
    """24 rows, batch 4, 1 epoch → 6 steps per stage (the curriculum test trains exactly these); the SFT stage's
    tokens are one sequence per row, the preference stage's two, each capped at max_length=256."""
    loaded = load_recipe(REPO / "recipes" / "tiny" / "sft_then_dpo.yaml", [f"model.name={tiny_model_dir}"])
    warmup, concise = plan_recipe(loaded)
    assert (warmup.kind, warmup.train_rows, warmup.eval_rows, warmup.steps) == ("sft", 24, 8, 6)
    assert (concise.train_rows, concise.steps, concise.reference) == (24, 6, "base")
    assert concise.loss == "dpo + 0.5·sft"
    assert 24 * 8 < warmup.train_tokens <= 24 * 256
    assert warmup.train_tokens < concise.train_tokens <= 2 * 24 * 256


def test_stage_steps_for_the_stage_header():
    """The steps the stage header announces: the plan's 6 (24 rows, batch 4) without a row count, and rounded up for
    a given one (13 rows → 4 steps). If this fails, the header's steps and time left disagree with training."""
    loaded = load_recipe(REPO / "recipes" / "tiny" / "sft_then_dpo.yaml")
    warmup, concise = loaded.recipe.stages
    assert stage_steps(loaded, warmup) == stage_steps(loaded, concise) == 6
    assert stage_steps(loaded, concise, 13) == 4


def test_plan_cli_prints_a_table_and_json(tiny_model_dir, capsys):
    recipe = str(REPO / "recipes" / "tiny" / "dpo.yaml")
    assert main(["plan", recipe, "--set", f"model.name={tiny_model_dir}"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["stage", "kind", "rows", "eval", "steps", "loss", "reference", "tokens"]
    assert "concise  preference  48" in table
    assert main(["plan", recipe, "--set", f"model.name={tiny_model_dir}", "--json"]) == 0
    (stage,) = json.loads(capsys.readouterr().out)
    assert stage["steps"] == 12 and stage["train_rows"] == 48

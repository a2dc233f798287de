"""The preference kind (align/stages/preference.py): its recipe checks, row checks, dropped-row count and labels."""

from types import SimpleNamespace

import pytest

from align.data.rows import PreferenceRow
from align.errors import AlignError
from align.stages import stage_kind
from tests.recipe.conftest import recipe_problems

PREFERENCE = stage_kind("preference")


def _stage(loss: str = "loss: {name: dpo}", extra: str = "") -> str:
    return f"name: t\nstages:\n  - name: s\n    data: {{train: [{{path: pairs.jsonl}}]}}\n    {loss}\n{extra}"


def test_dropped_rows_are_counted_and_warned(caplog):
    """10 train + 4 eval rows offered, trl kept 8 + 3: 3 dropped, with one warning naming the stage and
    max_length; nothing dropped → 0 and no warning. If this fails, rows vanish without a word."""
    trainer = SimpleNamespace(train_dataset=[0] * 8, eval_dataset=[0] * 3, args=SimpleNamespace(max_length=64))
    stage = SimpleNamespace(name="easy")
    assert PREFERENCE.dropped_rows(stage, 14, trainer) == 3
    assert "stage easy: 3 rows dropped" in caplog.text and "max_length=64" in caplog.text
    caplog.clear()
    no_eval = SimpleNamespace(train_dataset=[0] * 10, eval_dataset=None, args=trainer.args)
    assert PREFERENCE.dropped_rows(stage, 10, no_eval) == 0
    assert caplog.text == ""


def test_loss_label_terms_and_reference():
    """`dpo` (weight 1) and `sft` (weight 0.2, no params) read `dpo + 0.2·sft`; summary terms carry each weight and
    parameter; the reference is the stage's own. If this fails, plan and summary.json misreport what trains."""
    terms = [
        SimpleNamespace(name="dpo", weight=1.0, params={"beta": 0.1}),
        SimpleNamespace(name="sft", weight=0.2, params={}),
    ]
    stage = SimpleNamespace(loss=terms, reference="previous")
    assert PREFERENCE.loss_label(stage) == "dpo + 0.2·sft"
    assert PREFERENCE.loss_terms(stage) == [{"name": "dpo", "weight": 1.0, "beta": 0.1}, {"name": "sft", "weight": 0.2}]
    assert PREFERENCE.reference_label(stage) == "previous"


def test_rows_with_k_negatives_are_refused_for_a_pairwise_only_loss():
    """lddpo needs one rejected answer sharing the chosen one's prefix: rows with 2 rejected answers are refused
    with the stage named; the same rows pass under nca (multi-negative). If this fails, a K the loss cannot take
    reaches the trainer (a shape error, or a silently wrong loss)."""
    rows = [PreferenceRow(prompt="q", chosen="a", rejected=["b", "c"])]
    lddpo = SimpleNamespace(name="hard", loss=[SimpleNamespace(name="lddpo", weight=1.0, params={}, rewards=False)])
    with pytest.raises(AlignError, match="stage 'hard'"):
        PREFERENCE.check_rows(lddpo, rows)
    nca = SimpleNamespace(name="hard", loss=[SimpleNamespace(name="nca", weight=1.0, params={}, rewards=False)])
    PREFERENCE.check_rows(nca, rows)


def test_micro_batch_tokens_and_pair_gate_checks(recipe_dir):
    """micro_batch_tokens with the padded layout, and a pair-accuracy gate with no held-out pairs, are each one
    problem at their own key. If this fails, a recipe that cannot split batches or measure its gate validates."""
    problems = recipe_problems(
        recipe_dir(
            "r.yaml",
            _stage(
                extra="    batch_layout: padded\n    micro_batch_tokens: 512\n"
                "    eval: {gates: {min_pair_accuracy: 0.6}}\n"
            ).replace("pairs.jsonl}]}", "pairs.jsonl}], eval_fraction: 0}"),
        )
    )
    assert any("stages[0].micro_batch_tokens" in p and "batch_layout: packed" in p for p in problems), problems
    assert any("min_pair_accuracy" in p and "needs held-out pairs" in p for p in problems), problems


def test_a_kto_source_format_is_refused_at_its_key(recipe_dir):
    """`format: kto` on a preference stage's source is one problem at that key pointing at `kind: kto`. If this
    fails, the mistake surfaces only when training reads the file."""
    recipe = recipe_dir("r.yaml", _stage().replace("{path: pairs.jsonl}", "{path: pairs.jsonl, format: kto}"))
    (problem,) = recipe_problems(recipe)
    assert "stages[0].data.train[0].format" in problem and "`kind: kto` stage" in problem

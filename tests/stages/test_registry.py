"""The stage-kind registry (align/stages): one module and one registry line make a kind that validation, row
selection and `align plan` all honour; nothing else in align compares kind names."""

import re
from pathlib import Path

import pytest

from align.errors import AlignError
from align.plan import plan_stage
from align.recipe import load_recipe
from align.selection import stage_rows
from align.stages import STAGE_KINDS, StageKind, stage_kind

PACKAGE = Path(__file__).resolve().parents[2] / "align"


class EchoStage(StageKind):
    """A kind a test registers: completion rows, SFTConfig, its own source rule and loss label."""

    name = "echo"
    description = "test kind"
    trl_config = "SFTConfig"
    refusal_groups = ("model_loading",)
    takes_loss = False
    row_format = "completion"

    def check_source(self, source, path, out):
        if source.weight != 1.0:
            out.add(path + ("weight",), "echo stages take unweighted sources")

    def check_stage(self, stage, raw, training, path, out):
        if stage.eval.gates.min_pair_accuracy is not None:
            out.add(path + ("eval", "gates", "min_pair_accuracy"), "echo stages have no pairs")

    def read_rows(self, source, base_dir, issues):
        from align.data import load_completion_rows

        rows = load_completion_rows(source.path, source.columns, base_dir, source.split, issues=issues)
        return rows[: len(rows) // 2]  # a visible mark that this kind, not another, read the rows

    def loss_terms(self, stage):
        return [{"name": "echo", "weight": 1.0}]

    def loss_label(self, stage):
        return "echo-loss"


@pytest.fixture
def echo_kind():
    STAGE_KINDS["echo"] = EchoStage()
    yield STAGE_KINDS["echo"]
    del STAGE_KINDS["echo"]


def _recipe(write, stage_extra: str = "", rows: int = 8) -> Path:
    write("rows.jsonl", "".join(f'{{"prompt": "q{i}", "completion": "a{i}"}}\n' for i in range(rows)))
    return write(
        "r.yaml",
        "name: t\nstages:\n  - name: s\n    kind: echo\n    data: {train: [{path: rows.jsonl}], eval_fraction: 0}\n"
        + stage_extra,
    )


def test_a_registered_kind_is_validated_selected_and_planned_through_its_module(write, echo_kind, tiny_model_dir):
    """With `echo` registered: the recipe loads; its training keys are checked against SFTConfig (an SFT-only
    field passes, a DPO-only one is refused); rows come from its `read_rows` (4 of 8); `align plan` prints its loss
    label and no reference. If this fails, some module still decides by kind name instead of asking the registry."""
    loaded = load_recipe(_recipe(write, "    training: {dataset_text_field: text}\n"))
    stage = loaded.recipe.stages[0]
    assert stage_kind(stage.kind) is echo_kind
    train, held, _ = stage_rows(loaded, stage, seed=0)
    assert (len(train), len(held)) == (4, 0)
    plan = plan_stage(loaded, stage, _tokenizer(tiny_model_dir))
    assert (plan.kind, plan.loss, plan.reference, plan.train_rows) == ("echo", "echo-loss", "-", 4)
    with pytest.raises(AlignError) as refused:
        load_recipe(_recipe(write, "    training: {beta: 0.2}\n"))
    assert "stages[0].training.beta" in str(refused.value)


def test_a_kinds_own_checks_run_at_their_key_paths(write, echo_kind):
    """The kind's source and stage checks report at `data.train[0].weight` and `eval.gates.min_pair_accuracy`. If
    this fails, validation skips a kind's own rules, or reports them where the user cannot find them."""
    path = write("rows.jsonl", '{"prompt": "q", "completion": "a"}\n')
    recipe = write(
        "r.yaml",
        f"name: t\nstages:\n  - name: s\n    kind: echo\n    data: {{train: [{{path: {path}, weight: 2}}]}}\n"
        "    eval: {gates: {min_pair_accuracy: 0.6}}\n",
    )
    with pytest.raises(AlignError) as info:
        load_recipe(recipe)
    problems = [str(p) for p in info.value.problems]
    assert any("stages[0].data.train[0].weight" in p and "unweighted" in p for p in problems), problems
    assert any("min_pair_accuracy" in p and "echo stages have no pairs" in p for p in problems), problems


def test_an_unknown_kind_is_refused_with_the_registered_ones(write):
    """`kind: dpo` (a loss, not a kind) is one problem at the stage's `kind` line naming the registered kinds. If
    this fails, a typo trains the default kind or crashes later."""
    write("rows.jsonl", '{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    recipe = write("r.yaml", "name: t\nstages:\n  - name: s\n    kind: dpo\n    data: {train: [{path: rows.jsonl}]}\n")
    with pytest.raises(AlignError) as info:
        load_recipe(recipe)
    (problem,) = info.value.problems
    assert "r.yaml:4" in str(problem) and "stages[0].kind" in str(problem)
    assert "'preference', 'sft'" in str(problem)


def test_no_module_outside_align_stages_compares_kind_names():
    """Scans the package for `kind == ...`, `kind != ...` and `kind in (...)` outside align/stages/. If this fails,
    someone added a kind-specific branch elsewhere: move it into the kind's module (`align/stages/<kind>.py`)."""
    comparison = re.compile(r"\bkind\s*(==|!=|in\s*[\(\[\{])|['\"](sft|preference)['\"]\s*(==|!=|in\b)")
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in PACKAGE.rglob("*.py")
        if "stages" not in path.relative_to(PACKAGE).parts[:1]
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if comparison.search(line)
    ]
    assert offenders == []


def _tokenizer(model_dir):
    from align.models import load_tokenizer

    return load_tokenizer(str(model_dir))

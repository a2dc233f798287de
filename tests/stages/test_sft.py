"""The sft kind (align/stages/sft.py): what it refuses in a recipe, how it reads rows, what it reports."""

from types import SimpleNamespace

from align.recipe import load_recipe
from align.stages import stage_kind
from tests.recipe.conftest import recipe_problems

SFT = stage_kind("sft")


def test_preference_only_keys_are_refused_on_an_sft_stage(recipe_dir):
    """`loss`, a source `format`, a `chosen` column mapping and the pair gate each get one problem at their own key.
    If this fails, an sft stage silently ignores a key the user set."""
    recipe = recipe_dir(
        "r.yaml",
        "name: t\nstages:\n  - name: warm\n    kind: sft\n"
        "    data: {train: [{path: pairs.jsonl, format: standard, columns: {chosen: answer}}]}\n"
        "    loss: {name: dpo}\n    eval: {gates: {min_pair_accuracy: 0.6}}\n",
    )
    problems = recipe_problems(recipe)
    for key in ("loss", "data.train[0].format", "data.train[0].columns.chosen", "min_pair_accuracy"):
        assert any(f".{key}" in p for p in problems), (key, problems)


def test_batch_layout_keys_are_taken_and_checked_on_an_sft_stage(recipe_dir):
    """`batch_layout` and `micro_batch_tokens` are sft stage keys: valid values validate, micro_batch_tokens with the
    padded layout or below 1 is one problem at its key. If this fails, a recipe cannot choose the sft layout, or one
    that cannot split batches validates."""
    stage = "name: t\nstages:\n  - name: warm\n    kind: sft\n    data: {train: [{path: pairs.jsonl}]}\n"
    packed = load_recipe(recipe_dir("ok.yaml", stage + "    batch_layout: packed\n    micro_batch_tokens: 256\n"))
    assert (packed.recipe.stages[0].batch_layout, packed.recipe.stages[0].micro_batch_tokens) == ("packed", 256)
    assert (
        load_recipe(recipe_dir("pad.yaml", stage + "    batch_layout: padded\n")).recipe.stages[0].batch_layout
        == "padded"
    )
    for extra, message in (
        ("    batch_layout: padded\n    micro_batch_tokens: 64\n", "batch_layout: packed"),
        ("    micro_batch_tokens: 0\n", "positive number of tokens"),
    ):
        problems = recipe_problems(recipe_dir("bad.yaml", stage + extra))
        assert any("stages[0].micro_batch_tokens" in p and message in p for p in problems), problems


def test_rows_come_from_completions_or_chosen(write):
    """A completion file and a preference file both read as prompt → completion rows (`chosen` stands in). If this
    fails, an sft warm-up cannot use the pairs file the later stages use."""
    completions = write("c.jsonl", '{"prompt": "q", "completion": "a"}\n')
    pairs = write("p.jsonl", '{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    source = lambda path: SimpleNamespace(path=str(path), columns={}, split="train", format="auto")  # noqa: E731
    for path in (completions, pairs):
        (row,) = SFT.read_rows(source(path), path.parent, None)
        assert (row.prompt, row.completion) == ("q", "a")


def test_reports_trls_sft_loss_and_no_reference():
    """summary.json and plan show trl's SFT loss, and `-` for the reference it does not have."""
    stage = SimpleNamespace(loss=[SimpleNamespace(name="dpo", weight=1.0, params={})], reference="base")
    assert SFT.loss_terms(stage) == [{"name": "sft (trl)", "weight": 1.0}]
    assert (SFT.loss_label(stage), SFT.reference_label(stage)) == ("sft (trl)", "-")

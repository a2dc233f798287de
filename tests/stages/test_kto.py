"""The kto kind (align/stages/kto.py): what it refuses in a recipe and where, how it reads rows, what trl gets, what
it reports in `align plan`."""

import json
from types import SimpleNamespace

from align.plan import plan_stage
from align.recipe import load_recipe
from align.selection import stage_rows
from align.stages import stage_kind
from tests.recipe.conftest import recipe_problems

KTO = stage_kind("kto")


def _recipe(stage_extra: str = "", top: str = "", source: str = "{path: pairs.jsonl}") -> str:
    return f"name: t\n{top}stages:\n  - name: fb\n    kind: kto\n    data: {{train: [{source}]}}\n{stage_extra}"


def test_keys_kto_cannot_honour_are_refused_at_their_own_keys(recipe_dir):
    """`loss`, `batch_layout`, `micro_batch_tokens`, the pair-accuracy gate, `reference: none`, a `scored` source
    and an unknown column mapping each get one problem at their own key. If this fails, a kto stage silently
    ignores a key the user set (or fails inside trl with a traceback)."""
    recipe = recipe_dir(
        "r.yaml",
        _recipe(
            "    loss: {name: dpo}\n    batch_layout: padded\n    micro_batch_tokens: 512\n    reference: none\n"
            "    eval: {gates: {min_pair_accuracy: 0.6}}\n",
            source="{path: pairs.jsonl, format: scored, columns: {score: s}}",
        ),
    )
    problems = recipe_problems(recipe)
    expected = {
        "stages[0].loss": "trl's KTO loss",
        "stages[0].batch_layout": "laid out by trl's KTOTrainer",
        "stages[0].micro_batch_tokens": "laid out by trl's KTOTrainer",
        "stages[0].reference": "use `reference: base` or `previous`",
        "stages[0].eval.gates.min_pair_accuracy": "no held-out pair accuracy",
        "stages[0].data.train[0].format": "'scored' is not allowed",
        "stages[0].data.train[0].columns.score": "kto stages map only prompt, completion, label",
    }
    for key, message in expected.items():
        assert any(key in p and message in p for p in problems), (key, problems)
    assert len(problems) == len(expected), problems


def test_trl_settings_kto_refuses_are_named_where_they_were_set(recipe_dir):
    """A batch of 1 (no KL estimate) at the top level is reported at `training.per_device_train_batch_size`; a
    random sampler and `sync_ref_model` in the stage at the stage's keys. If this fails, trl raises a ValueError
    traceback at training time instead of one line at validation."""
    recipe = recipe_dir(
        "r.yaml",
        _recipe(
            "    training: {train_sampling_strategy: random, sync_ref_model: true}\n",
            top="training: {per_device_train_batch_size: 1}\n",
        ),
    )
    problems = recipe_problems(recipe)
    assert any(
        p.startswith(str(recipe) + ":2: training.per_device_train_batch_size: KTO estimates its KL term")
        for p in problems
    ), problems
    assert any("stages[0].training.train_sampling_strategy" in p and "sequential sampler" in p for p in problems)
    assert any("stages[0].training.sync_ref_model" in p and "reference: previous" in p for p in problems)


def test_kto_options_pass_through_and_apo_zero_needs_no_kl_batch(recipe_dir):
    """`beta`, `desirable_weight` and `loss_type: apo_zero_unpaired` with a batch of 1 validate (trl's own KTO
    options, not refused as on preference stages; the unpaired APO loss has no KL term), and `reference: previous`
    is allowed. If this fails, kto stages cannot be tuned."""
    recipe = recipe_dir(
        "r.yaml",
        _recipe(
            "    reference: previous\n    training: {beta: 0.2, desirable_weight: 1.5, loss_type: apo_zero_unpaired,"
            " per_device_train_batch_size: 1}\n"
        ),
    )
    stage = load_recipe(recipe).recipe.stages[0]
    assert (stage.kind, KTO.reference_label(stage), KTO.loss_label(stage)) == ("kto", "previous", "kto (trl)")


def test_rows_from_a_kto_file_and_a_pair_file_are_selected_and_planned(write, tiny_model_dir):
    """A stage with a KTO file and a pair file: 2 + 2·2 rows read and filtered by `kinds` as whole pairs, and
    `align plan` counts one sequence per row. If this fails, selection or plan misread KTO rows."""
    from align.models import load_tokenizer

    write(
        "k.jsonl", "".join(json.dumps({"prompt": f"q{i}", "completion": "a", "label": i % 2}) + "\n" for i in range(2))
    )
    pairs = [
        {"prompt": "p1", "chosen": "good", "rejected": "bad", "kind": "verbose"},
        {"prompt": "p2", "chosen": "good", "rejected": "bad", "kind": "verbose"},
        {"prompt": "p3", "chosen": "good", "rejected": "bad", "kind": "vague"},
    ]
    write("pairs.jsonl", "".join(json.dumps(p) + "\n" for p in pairs))
    recipe = write(
        "r.yaml",
        "name: t\nstages:\n  - name: fb\n    kind: kto\n"
        "    data: {train: [{path: k.jsonl}, {path: pairs.jsonl}], kinds: [verbose], eval_fraction: 0}\n"
        "    training: {num_train_epochs: 1}\n",
    )
    loaded = load_recipe(recipe)
    stage = loaded.recipe.stages[0]
    train, held, counts = stage_rows(loaded, stage, seed=0)
    assert (len(train), len(held), counts["filtered_by_kind"]) == (4, 0, 4)  # the k.jsonl rows have no `kind`
    tokenizer = load_tokenizer(str(tiny_model_dir))
    plan = plan_stage(loaded, stage, tokenizer)
    one_sequence = sum(
        len(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": r.prompt}, {"role": "assistant", "content": r.completion}],
                tokenize=True,
                return_dict=True,
            )["input_ids"]
        )
        for r in train
    )
    assert (plan.kind, plan.loss, plan.reference, plan.train_tokens) == ("kto", "kto (trl)", "base", one_sequence)


def test_dropped_rows_are_counted_and_warned(caplog):
    """trl's KTOTrainer drops rows whose prompt fills max_length: 10 offered, 8 + 1 kept → 1, with a warning naming
    the stage. If this fails, rows vanish from a kto stage without a word."""
    trainer = SimpleNamespace(train_dataset=[0] * 8, eval_dataset=[0], args=SimpleNamespace(max_length=32))
    assert KTO.dropped_rows(SimpleNamespace(name="fb"), 10, trainer) == 1
    assert "stage fb: 1 rows dropped" in caplog.text and "max_length=32" in caplog.text


def test_the_trainer_is_trls_kto_trainer_with_unpaired_columns(write, tiny_model_dir, tmp_path):
    """The stage runner's dataset of KTO rows has trl's `prompt`/`completion`/`label` columns, and the kind builds
    trl's KTOTrainer, which adds its KL completions. If this fails, KTO trains on columns trl does not read."""
    from trl import KTOConfig, KTOTrainer

    from align.data import load_kto_rows
    from align.models import load_model, load_tokenizer
    from align.recipe.trl_configs import make_lora_config
    from align.training.stages import rows_to_dataset

    path = write(
        "k.jsonl",
        "".join(json.dumps({"prompt": f"q{i}", "completion": f"a{i}", "label": i % 2}) + "\n" for i in range(4)),
    )
    tokenizer = load_tokenizer(str(tiny_model_dir))
    dataset = rows_to_dataset(load_kto_rows(path), tokenizer)
    assert dataset.column_names == ["prompt", "completion", "label"] and dataset["label"] == [False, True] * 2
    config = KTOConfig(str(tmp_path / "out"), per_device_train_batch_size=2, report_to="none", bf16=False)
    trainer = KTO.build_trainer(
        SimpleNamespace(name="fb"),
        model=load_model(str(tiny_model_dir)),
        args=config,
        train_dataset=dataset,
        eval_dataset=None,
        processing_class=tokenizer,
        peft_config=make_lora_config({"r": 4, "target_modules": "all-linear"}),
        callbacks=[],
    )
    assert isinstance(trainer, KTOTrainer) and "KL_completion_ids" in trainer.train_dataset.column_names


def test_the_kind_is_registered_with_trls_kto_config():
    """`kind: kto` is in the registry, passes `training:` to trl's KTOConfig and reads each source in its own format
    (KTO rows or pairs). If this fails, the registry line is missing or the kind validates its training keys
    against another trainer's config."""
    from trl import KTOConfig

    assert KTO.config_class() is KTOConfig and KTO.row_format is None

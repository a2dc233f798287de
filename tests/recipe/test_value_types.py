"""Values passed through to peft's LoraConfig and trl's DPOConfig/SFTConfig are checked against the fields' type
annotations (unions, lists, tuples, dicts, literals, enums), at the key's own line."""

import typing

import pytest

from align.recipe import load_recipe
from align.recipe.value_types import describe, fits
from tests.recipe.conftest import recipe_problems

RECIPE = """name: t
peft:
  r: 8
  {peft}
training:
  {training}
stages:
  - name: s
    kind: {kind}
    data: {{train: [{{path: pairs.jsonl}}]}}
"""


def _recipe(recipe_dir, peft: str = "lora_alpha: 16", training: str = "logging_steps: 1", kind: str = "preference"):
    return recipe_dir("r.yaml", RECIPE.format(peft=peft, training=training, kind=kind))


def test_a_mapping_for_target_modules_is_one_line_at_its_key(recipe_dir):
    """The issue's example: `target_modules: {oops: [1, 2]}` passed `align validate` and failed when the adapter was
    built. If this fails, a wrong-typed peft value reaches training again."""
    path = _recipe(recipe_dir, peft="target_modules: {oops: [1, 2]}")
    assert recipe_problems(path) == [
        f"{path}:4: peft.target_modules: expected list[str] | str | None, got dict {{'oops': [1, 2]}}"
    ]


@pytest.mark.parametrize(
    ("section", "kind", "entry", "message"),
    [
        (
            "peft",
            "preference",
            "target_modules: [q_proj, 3]",
            "expected list[str] | str | None, got list ['q_proj', 3]",
        ),
        ("peft", "preference", "layers_to_transform: [0, x]", "expected list[int] | int | None, got list [0, 'x']"),
        ("peft", "preference", "layer_replication: [[0, 1, 2]]", "expected list[tuple[int, int]] | None, got list"),
        ("peft", "preference", "rank_pattern: [1]", "expected dict | None, got list [1]"),
        ("peft", "preference", "init_lora_weights: 3", "expected bool | 'gaussian' | 'eva'"),
        ("training", "preference", "optim_target_modules: [1]", "expected None | str | list[str], got list [1]"),
        ("training", "preference", "gradient_checkpointing_kwargs: [1]", "expected dict[str, Any] | str | None"),
        ("training", "preference", "label_names: labels", "expected list[str] | None, got str 'labels'"),
        ("training", "preference", "precompute_ref_batch_size: many", "expected int | None, got str 'many'"),
        ("training", "sft", "dataset_kwargs: [skip]", "expected dict[str, Any] | str | None, got list"),
        ("training", "sft", "completion_only_loss: maybe", "expected bool | None, got str 'maybe'"),
    ],
)
def test_wrong_types_name_the_expected_type(recipe_dir, section, kind, entry, message):
    """Each annotation shape (list of str, list of int, list of pairs, bare dict, bool-or-literal, optional
    int/bool, dict[str, Any]) in LoraConfig, DPOConfig and SFTConfig: one error at the key naming the type. If this
    fails, that shape is not checked and a wrong value reaches peft or trl."""
    path = _recipe(recipe_dir, kind=kind, **{section: entry})
    (problem,) = recipe_problems(path)
    key = entry.split(":")[0]
    line = 4 if section == "peft" else 6
    assert problem.startswith(f"{path}:{line}: {section}.{key}: {message}"), problem


@pytest.mark.parametrize(
    ("section", "entry"),
    [
        ("peft", "target_modules: all-linear"),
        ("peft", "target_modules: [q_proj, v_proj]"),
        ("peft", "init_lora_weights: pissa_niter_16"),  # peft's Literal lists the template 'pissa_niter_[...]'
        ("peft", "layer_replication: [[0, 2], [1, 2]]"),
        ("peft", "rank_pattern: {q_proj: 4}"),
        ("training", "lr_scheduler_kwargs: {min_lr: 0.0}"),
        ("training", "save_strategy: 'no'"),
        ("training", "fsdp: [full_shard, auto_wrap]"),  # annotated `str | None`, also takes its legacy list
        ("training", "max_length: null"),
        ("training", "warmup_steps: 2"),  # an int for a float field
    ],
)
def test_values_of_the_right_type_pass(recipe_dir, section, entry):
    """Valid values of every shape still load. If this fails, the check refuses recipes trl and peft accept."""
    load_recipe(_recipe(recipe_dir, **{section: entry}))


def test_a_yaml_boolean_where_a_string_belongs_says_to_quote_it(recipe_dir):
    """`save_strategy: no` is the boolean false in YAML; the error says why and what to do."""
    (problem,) = recipe_problems(_recipe(recipe_dir, training="save_strategy: no"))
    assert problem.endswith(
        "training.save_strategy: expected SaveStrategy | str, got bool False (YAML reads unquoted "
        "yes/no/on/off/true/false as booleans: quote it)"
    )


def test_fits_is_three_valued():
    """True, False, or None for what only the config can judge (a nested config class, a string for a Literal of
    strings); a union is True if any arm is. If this fails, unknown classes are refused or bad values accepted."""

    class Nested:
        pass

    assert fits([["a", 1]], list[tuple[str, int]]) is True
    assert fits([["a", 1, 2]], list[tuple[str, int]]) is False
    assert fits({"k": [1]}, dict[str, list[int]]) is True and fits({"k": ["x"]}, dict[str, list[int]]) is False
    assert fits({"x": 1}, Nested) is None and fits({"x": 1}, Nested | None) is None and fits(None, Nested | None)
    assert fits("other", typing.Literal["a", "b"]) is None and fits(1, typing.Literal["a", "b"]) is False
    assert fits(True, int) is False and fits(1, float) is True and fits(0, typing.Literal[False]) is False
    assert describe(typing.Optional[typing.Union[list[str], str]]) == "list[str] | str | None"

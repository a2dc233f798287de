"""Recipe loading: typed values, errors located by file/line/key with suggestions, overrides."""

from pathlib import Path

import pytest

from align.recipe import load_recipe
from tests.recipe.conftest import recipe_problems as _problems

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
name: t
model:
  name: tiny-llama
stages:
  - name: first
    data:
      train: [{path: pairs.jsonl}]
    loss: {name: dpo, beta: 0.2}
    training:
      learning_rate: 1.0e-3
      per_device_train_batch_size: 2
"""


def test_good_recipe_maps_onto_typed_configs(recipe_dir):
    """Values arrive typed (float from YAML int allowed), defaults fill the rest, loss params are kept."""
    loaded = load_recipe(recipe_dir("r.yaml", GOOD))
    stage = loaded.recipe.stages[0]
    assert loaded.recipe.model.name == "tiny-llama"
    assert loaded.recipe.model.trust_remote_code is False
    assert stage.loss[0].name == "dpo" and stage.loss[0].params == {"beta": 0.2}
    assert loaded.stage_training(stage)["learning_rate"] == 1e-3
    assert loaded.resolve_path(stage.data.train[0].path).exists()


def test_unknown_key_names_file_line_path_and_suggestion(recipe_dir):
    """A typo gets the line it is on and the nearest valid key; if not, authors hunt for typos by hand."""
    text = GOOD.replace("    loss: {name: dpo, beta: 0.2}", "    los: {name: dpo}")
    (problem,) = _problems(recipe_dir("r.yaml", text))
    assert problem.endswith("r.yaml:8: stages[0].los: unknown key; did you mean 'loss'?")


def test_training_keys_are_checked_against_trl_with_suggestions(recipe_dir):
    text = GOOD.replace("learning_rate: 1.0e-3", "learnig_rate: 1.0e-3")
    (problem,) = _problems(recipe_dir("r.yaml", text))
    assert ":10: stages[0].training.learnig_rate: unknown key; did you mean 'learning_rate'?" in problem


def test_trl_validation_applies_to_training_values(recipe_dir):
    """A value trl's DPOConfig refuses is reported at the stage's training key, not as a traceback."""
    text = GOOD.replace("per_device_train_batch_size: 2", "lr_scheduler_type: not_a_schedule")
    (problem,) = _problems(recipe_dir("r.yaml", text))
    assert "stages[0].training" in problem and "DPOConfig" in problem


def test_every_problem_is_reported_at_once(recipe_dir):
    """Wrong type, bad literal, missing required key, unknown loss param: four problems, one run."""
    text = (
        GOOD.replace("name: tiny-llama", "name: tiny-llama\n  dtype: float8")
        .replace("beta: 0.2", "beta: high, gamma: 1")
        .replace("      train: [{path: pairs.jsonl}]", "      eval: []")
    )
    problems = _problems(recipe_dir("r.yaml", text))
    joined = "\n".join(problems)
    assert "model.dtype: 'float8' is not allowed" in joined
    assert "stages[0].data.train: needs at least one source (or `data.generate` to sample its rows)" in joined
    assert "stages[0].loss.beta: expected a number, got str 'high'" in joined
    assert "loss 'dpo' has no parameter 'gamma'" in joined


def test_reserved_and_duplicate_and_missing_files(recipe_dir):
    text = (
        GOOD.replace("learning_rate: 1.0e-3", "output_dir: elsewhere").replace(
            "path: pairs.jsonl", "path: nowhere.jsonl"
        )
        + GOOD.split("stages:\n", 1)[1]
    )
    joined = "\n".join(_problems(recipe_dir("r.yaml", text)))
    assert "stages[0].training.output_dir: align sets this itself" in joined
    assert "duplicate stage name 'first'" in joined
    assert "no such file" in joined and "nowhere.jsonl" in joined


def test_unknown_loss_name_suggests(recipe_dir):
    (problem,) = _problems(recipe_dir("r.yaml", GOOD.replace("name: dpo", "name: dop")))
    assert "unknown loss 'dop'; did you mean 'dpo'?" in problem


def test_set_overrides_by_stage_name_and_index_are_typed(recipe_dir):
    """`--set` reaches into stages by name or index and values are parsed as YAML (0.05 is a float)."""
    path = recipe_dir("r.yaml", GOOD)
    loaded = load_recipe(path, ["stages.first.loss.beta=0.05", "stages.0.training.learning_rate=3e-4", "seed=7"])
    assert loaded.recipe.stages[0].loss[0].params["beta"] == 0.05
    assert loaded.recipe.stages[0].training["learning_rate"] == 3e-4
    assert loaded.recipe.seed == 7
    assert loaded.raw["seed"] == 7


def test_bad_overrides_are_user_errors(recipe_dir):
    path = recipe_dir("r.yaml", GOOD)
    assert "no item named 'nope'" in _problems(path, ["stages.nope.loss.beta=1"])[0]
    assert "not key.path=value" in _problems(path, ["seed"])[0]
    assert "seed: expected an integer" in _problems(path, ["seed=abc"])[0]


def test_exponent_floats_are_numbers(recipe_dir):
    """`1e-4` without a dot is a float (YAML 1.2), in files and in `--set`; PyYAML's 1.1 rules would give the
    string "1e-4", which trl accepts and the optimizer then crashes on."""
    path = recipe_dir("r.yaml", GOOD.replace("learning_rate: 1.0e-3", "learning_rate: 1e-3"))
    assert load_recipe(path).recipe.stages[0].training["learning_rate"] == 1e-3
    loaded = load_recipe(path, ["training.learning_rate=2E-5", "stages.0.loss.beta=5e-2", "name=1e3x"])
    assert loaded.recipe.training["learning_rate"] == 2e-5
    assert loaded.recipe.stages[0].loss[0].params["beta"] == 0.05
    assert loaded.recipe.name == "1e3x"


def test_passthrough_values_are_type_checked(recipe_dir):
    """trl does not coerce its fields: a string learning rate would pass and crash in the optimizer."""
    text = GOOD.replace("learning_rate: 1.0e-3", "learning_rate: fast").replace(
        "per_device_train_batch_size: 2", "per_device_train_batch_size: 2.5"
    )
    problems = "\n".join(_problems(recipe_dir("r.yaml", text)))
    assert "r.yaml:10: stages[0].training.learning_rate: expected float, got str 'fast'" in problems
    assert "stages[0].training.per_device_train_batch_size: expected int, got float 2.5" in problems


def test_broken_yaml_names_the_line(write):
    (problem,) = _problems(write("r.yaml", "name: t\nstages:\n  - name: [unclosed\n"))
    assert "r.yaml:" in problem and "invalid YAML" in problem


def test_yaml_is_loaded_safely(write):
    """A python-object tag must never be constructed (arbitrary code execution)."""
    (problem,) = _problems(write("r.yaml", "name: !!python/object/apply:os.system ['echo pwned']\nstages: []\n"))
    assert "invalid YAML" in problem


RECIPES_DIR = REPO / "recipes"
# Every YAML file under recipes/, at any depth, except accelerate launcher configs (test_accelerate_configs.py).
RECIPES = sorted(p for p in RECIPES_DIR.rglob("*.yaml") if "accelerate" not in p.relative_to(RECIPES_DIR).parts)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(RECIPES_DIR)))
def test_every_shipped_recipe_validates(path):
    """Every recipe we ship must load cleanly (accelerate configs are checked in test_accelerate_configs.py)."""
    load_recipe(path)


def test_recipe_discovery_is_recursive_and_covers_every_folder():
    """If this fails, a folder of shipped recipes (e.g. the GPU examples in recipes/gpu/) is no longer validated by
    the test above, so a broken recipe could ship unnoticed."""
    tops = {p.relative_to(RECIPES_DIR).parts[0] for p in RECIPES}
    expected = {d.name for d in RECIPES_DIR.iterdir() if d.is_dir()} - {"accelerate"}
    assert tops == expected and {"tiny", "concise", "gpu"} <= tops


def test_run_name_data_file_types_and_gate_ranges_are_checked(recipe_dir):
    """A run name that would nest folders, a data file align cannot read (chosen by suffix), a folder that is not a
    saved dataset, a non-positive length ratio and an out-of-range recall drop are all caught by `validate`, not at
    training time. If this fails, such a recipe fails minutes into a run (or writes outside runs/)."""
    recipe_dir("notes.md", "# not data\n")
    recipe_dir("folder/readme.txt", "x")
    path = recipe_dir(
        "r.yaml",
        """name: ../escape
stages:
  - name: s
    data: {train: [{path: notes.md}, {path: folder}]}
    eval:
      prompts: pairs.jsonl
      gates: {max_mean_tokens_ratio: 0, max_key_point_recall_drop: 2}
""",
    )
    text = "\n".join(_problems(path))
    assert "r.yaml:1: name: '../escape': use letters, digits" in text
    assert "stages[0].data.train[0].path: .md is not a data file type align reads" in text
    assert "stages[0].data.train[1].path: is a folder but not one written by datasets' save_to_disk" in text
    assert "gates.max_mean_tokens_ratio: 0.0 must be a positive ratio" in text
    assert "gates.max_key_point_recall_drop: 2.0 must be in [-1, 1]" in text


def test_loop_gates_need_probe_prompts_and_limits_in_range(recipe_dir):
    """`max_loop_rate: 1.5` (a share cannot pass 1) and `max_loop_rate_increase: -2` (tuned − base of two shares is
    at least −1) are refused at their keys, and without `eval.prompts` each says to set it; in-range limits with
    prompts load. If this fails, a loop gate that can never be met or never be measured is found only after
    training."""
    gates = "    eval:\n      gates: {max_loop_rate: 1.5, max_loop_rate_increase: -2}\n"
    text = "\n".join(_problems(recipe_dir("r.yaml", GOOD + gates)))
    assert "gates.max_loop_rate: 1.5 must be in [0, 1] (a loop rate is a share of answers)" in text
    assert "gates.max_loop_rate_increase: -2.0 must be in [-1, 1] (a loop rate is a share of answers)" in text
    for key in ("max_loop_rate", "max_loop_rate_increase"):
        assert f"gates.{key}: measures probe answers: set eval.prompts" in text
    recipe_dir("probes.jsonl", '{"prompt": "q"}\n')
    good = (
        GOOD + "    eval:\n      prompts: probes.jsonl\n      gates: {max_loop_rate: 0.1, max_loop_rate_increase: 0}\n"
    )
    loaded_gates = load_recipe(recipe_dir("g.yaml", good)).recipe.stages[0].eval.gates
    assert (loaded_gates.max_loop_rate, loaded_gates.max_loop_rate_increase) == (0.1, 0.0)


def test_two_reward_terms_without_a_marked_one_are_refused_at_the_loss_line(recipe_dir):
    """`loss: [dpo, ipo]`: both give preference rewards and none says which to report, so the metrics and the
    min_pair_accuracy gate would depend on list order: one line at the loss key; `rewards: true` on one fixes it,
    and `[sft, dpo]` needs no marker (the sft term gives no preference rewards)."""
    text = GOOD.replace("    loss: {name: dpo, beta: 0.2}", "    loss: [{name: dpo}, {name: ipo}]")
    problems = _problems(recipe_dir("r.yaml", text))
    expected = "r.yaml:8: stages[0].loss: terms dpo, ipo all give preference rewards: set `rewards: true` on the one"
    assert len(problems) == 1 and problems[0].endswith(expected + " to report")
    marked = GOOD.replace("    loss: {name: dpo, beta: 0.2}", "    loss: [{name: dpo}, {name: ipo, rewards: true}]")
    assert [t.rewards for t in load_recipe(recipe_dir("m.yaml", marked)).recipe.stages[0].loss] == [False, True]
    sft_first = GOOD.replace("    loss: {name: dpo, beta: 0.2}", "    loss: [{name: sft}, {name: dpo}]")
    assert load_recipe(recipe_dir("s.yaml", sft_first)).recipe.stages[0].loss[1].name == "dpo"


def test_loss_parameters_outside_their_registered_range_are_refused_at_their_line(recipe_dir):
    """β 0 (nothing learnt) and lddpo's α 1.5 (outside [0, 1]) are one line each at the value, naming the range
    from the loss's registry entry. If this fails, such a recipe trains nothing or something undefined."""
    losses = "    loss: [{name: dpo, beta: 0, rewards: true}, {name: lddpo, alpha: 1.5}]"
    problems = _problems(recipe_dir("r.yaml", GOOD.replace("    loss: {name: dpo, beta: 0.2}", losses)))
    assert len(problems) == 2, problems
    assert problems[0].endswith("r.yaml:8: stages[0].loss[0].beta: 0.0 is outside the range of dpo's beta: (0, inf)")
    assert problems[1].endswith("r.yaml:8: stages[0].loss[1].alpha: 1.5 is outside the range of lddpo's alpha: [0, 1]")


@pytest.mark.parametrize(
    ("value", "trackers"),
    [("wandb", ["wandb"]), ("[wandb, tensorboard]", ["wandb", "tensorboard"]), ("none", []), ("[]", [])],
)
def test_report_to_takes_a_name_or_a_list(recipe_dir, value, trackers):
    """`report_to` is one tracker name or a list; `none` and `[]` mean no tracker. If this fails, a recipe cannot send
    metrics to wandb and tensorboard at once, or `none` starts a tracker."""
    assert load_recipe(recipe_dir("r.yaml", GOOD), [f"report_to={value}"]).recipe.report_to == trackers
    assert load_recipe(recipe_dir("r.yaml", GOOD)).recipe.report_to == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("mlflow", "report_to: 'mlflow' is not a tracker; use 'none', 'wandb', 'tensorboard' or a list of them"),
        ("[wandb, mlflow]", "report_to[1]: 'mlflow' is not a tracker"),
        ("[wandb, {a: 1}]", "report_to[1]: {'a': 1} is not a tracker"),
        ("[tensorboard, tensorboard]", "report_to[1]: 'tensorboard' is listed twice"),
        ("[none, wandb]", "report_to: 'none' cannot be combined with trackers"),
    ],
)
def test_bad_report_to_entries_are_one_line_problems(recipe_dir, value, expected):
    """Each bad `report_to` entry is one located line. If this fails, a typo'd tracker is ignored or a traceback."""
    (problem,) = _problems(recipe_dir("r.yaml", GOOD), [f"report_to={value}"])
    assert expected in problem and "\n" not in problem


def test_a_stage_named_eval_is_refused(recipe_dir):
    """A stage's metrics are `<stage>/<key>`: a stage named `eval` would log its training loss as `eval/loss`, the
    name trl's panels read as held-out loss. If this fails, those charts mix training and held-out figures."""
    (problem,) = _problems(recipe_dir("r.yaml", GOOD.replace("name: first", "name: eval")))
    assert "stages[0].name: 'eval' is reserved" in problem

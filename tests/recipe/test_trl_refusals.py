"""trl config fields align's trainers would ignore are refused at validation, one line naming what to do instead."""

import dataclasses
import inspect
import re

import pytest

from align.recipe.trl_refusals import TRL_REFUSALS
from tests.recipe.conftest import recipe_problems

RECIPE = """name: t
stages:
  - name: s
    kind: {kind}
    data: {{train: [{{path: pairs.jsonl}}]}}
    training:
      {entry}
"""
# Fields trl's DPOTrainer loss reads that align honours: its precompute pass calls align's reference log-probs, and
# gradient_checkpointing_kwargs only silences a PyTorch warning in trl's own reference forward.
HONOURED_BY_ALIGN = {"precompute_ref_log_probs", "gradient_checkpointing_kwargs"}


def _problem(recipe_dir, entry: str, kind: str = "preference") -> str:
    path = recipe_dir("r.yaml", RECIPE.format(kind=kind, entry=entry))
    (problem,) = recipe_problems(path)
    assert problem.startswith(f"{path}:7: stages[0].training.{entry.split(':')[0]}: "), problem
    return problem


@pytest.mark.parametrize(
    ("entry", "instead"),
    [
        ("label_smoothing: 0.1", "use the loss that has it: `loss: {name: robust, label_smoothing: 0.1}`"),
        ("ld_alpha: 0.5", "use the LD-DPO loss: `loss: {name: lddpo, alpha: 0.5}`"),
        ("beta: 0.2", "set `beta` on the loss, e.g. `loss: {name: dpo, beta: 0.1}`"),
        ("f_divergence_type: js_divergence", "choose one of align's losses (`align validate --explain loss`)"),
        ("use_weighting: true", "WPO weighting is not among align's losses"),
        ("discopop_tau: 0.05", "register one with `@register_loss` (align.losses)"),
    ],
)
def test_trl_loss_options_name_aligns_way(recipe_dir, entry, instead):
    """Options only trl's loss reads (align's registered losses replace it): refused, naming the align loss or
    parameter that does it. If this fails, `label_smoothing: 0.1` & co. train plain DPO silently."""
    problem = _problem(recipe_dir, entry)
    assert "trl's option, which align's preference stages would ignore: " in problem and instead in problem


@pytest.mark.parametrize(
    ("entry", "instead"),
    [
        ("rpo_alpha: 1.0", "add an `sft` term to the stage's loss list"),
        ("reference_free: true", "set `reference: none` on the stage with a reference-free loss"),
        ("sync_ref_model: true", "split the stage in two and set `reference: previous` on the second"),
        ("ref_model_sync_steps: 64", "split the stage in two and set `reference: previous` on the second"),
        ("padding_free: true", "`batch_layout: packed` on the stage (the default)"),
    ],
)
def test_reference_and_layout_options_name_aligns_way(recipe_dir, entry, instead):
    """Older trl options (rpo_alpha, reference_free), TR-DPO reference syncing (trl refuses it with PEFT only when
    training starts) and padding_free: each refused with align's equivalent. If this fails, they are ignored or
    fail only after the model has loaded."""
    assert instead in _problem(recipe_dir, entry)


@pytest.mark.parametrize("kind", ["preference", "sft"])
def test_model_loading_options_point_to_the_model_section(recipe_dir, kind):
    """align hands both trainers a loaded model and tokenizer, so trl's loading options do nothing in either kind
    of stage. If this fails, `trust_remote_code: true` under `training` is silently off."""
    assert _problem(recipe_dir, "trust_remote_code: true", kind).endswith("set `model.trust_remote_code: true`")
    assert "set `model.dtype`" in _problem(recipe_dir, "model_init_kwargs: {dtype: bfloat16}", kind)


def test_allowed_options_still_pass(recipe_dir):
    """Fields align honours are not refused: router_aux_loss_coef (the trainer adds the MoE router loss),
    precompute_ref_batch_size, disable_dropout. If this fails, the table refuses too much."""
    from align.recipe import load_recipe

    entry = "{router_aux_loss_coef: 0.0, precompute_ref_batch_size: 8, disable_dropout: false}"
    load_recipe(recipe_dir("r.yaml", RECIPE.format(kind="preference", entry=entry).replace("\n      {", " {")))


@pytest.mark.parametrize(
    ("key", "kind"),
    [(key, kind) for key, refusal in TRL_REFUSALS.items() for kind in refusal.kinds],
)
def test_every_refused_key_is_refused(recipe_dir, key, kind):
    """Every entry of the table, in every stage kind that takes its group, stops validation with its own message.
    If this fails, a key the table lists is passed to trl silently."""
    from trl import DPOConfig

    defaults = {f.name: f.default for f in dataclasses.fields(DPOConfig) if f.default is not dataclasses.MISSING}
    value = defaults.get(key)
    entry = f"{key}: {'null' if value is None else str(value).lower() if isinstance(value, bool) else value}"
    assert TRL_REFUSALS[key].instead in _problem(recipe_dir, entry, kind)


def test_every_option_trls_loss_reads_is_refused_or_honoured():
    """Reads trl's `DPOTrainer._compute_loss` (which align's trainer replaces): every config field it reads,
    directly or through an attribute `__init__` copied from the config, is in the refusal table or known to be
    honoured. If this fails after a trl upgrade, trl gained a loss option align would silently ignore: refuse it
    in `align/recipe/trl_refusals.py` (or reproduce it and list it here)."""
    from trl import DPOTrainer

    init, loss = inspect.getsource(DPOTrainer.__init__), inspect.getsource(DPOTrainer._compute_loss)
    copied = dict(re.findall(r"self\.(\w+) = (?:self\.)?args\.(\w+)", init))
    used = set(re.findall(r"self\.(\w+)", loss))
    read = {field for attr, field in copied.items() if attr in used} | set(re.findall(r"self\.args\.(\w+)", loss))
    assert {"beta", "ld_alpha", "label_smoothing", "use_weighting"} <= read, "the source scan found nothing"
    assert read - HONOURED_BY_ALIGN - set(TRL_REFUSALS) == set()


def test_explain_says_a_refused_key_is_refused():
    """`align validate --explain training.ld_alpha` tells what to write instead, not trl's documentation of an
    option align would refuse. If this fails, the help sends users to a key that fails validation."""
    from align.recipe.explain import explain

    text = explain("training.ld_alpha")
    assert text.startswith("training.ld_alpha: trl's option, refused in align's preference stages: use the LD-DPO")
    assert "The initial learning rate" in explain("training.learning_rate")


@pytest.mark.parametrize("where", ["top", "stage"])
def test_push_to_hub_is_refused_pointing_at_align_export(recipe_dir, where):
    """`training.push_to_hub: true` (top level or in a stage) stops `align validate` with exit 2 and one line naming
    `align export --push-to-hub`. If this fails, the recipe validates and then transformers pushes every stage's
    checkpoints folder to a repo named "checkpoints"."""
    import subprocess
    import sys

    top = "training: {push_to_hub: true}\n" if where == "top" else ""
    stage = "\n    training: {hub_model_id: me/x}" if where == "stage" else ""
    path = recipe_dir(
        "r.yaml", f"name: t\n{top}stages:\n  - name: s\n    data: {{train: [{{path: pairs.jsonl}}]}}{stage}\n"
    )
    done = subprocess.run([sys.executable, "-m", "align", "validate", str(path)], capture_output=True, text=True)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "each stage's checkpoints, not the model" in done.stderr
    assert "`align export RUN --push-to-hub REPO [--private]`" in done.stderr

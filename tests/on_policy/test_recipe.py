"""`data.generate` in recipes: validation at its keys, rounds expanded into stages, and `align plan`'s bounds."""

import pytest

from align.errors import AlignError
from align.recipe import load_recipe

STAGES = """
name: r
model: {{name: tiny-llama}}
stages:
  - name: warm
    kind: sft
    data: {{train: [{{path: sft.jsonl}}]}}
  - name: self
    kind: {kind}
    reference: previous
    data:
      generate: {{prompts: {prompts}, samples: 3, rounds: 3{extra}}}
    eval: {{prompts: prompts.jsonl, gates: {{max_loop_rate: 0.5}}}}
"""


def _text(kind: str = "preference", extra: str = "", prompts: str = "prompts.jsonl") -> str:
    return STAGES.format(kind=kind, extra=extra, prompts=prompts)


@pytest.fixture
def on_policy(write):
    write("sft.jsonl", '{"prompt": "p", "completion": "c"}\n')
    write("prompts.jsonl", '{"prompt": "How?", "reference": "Do it."}\n{"prompt": "Why?"}\n')

    def _recipe(kind: str = "preference", extra: str = "", prompts: str = "prompts.jsonl"):
        return write("recipe.yaml", _text(kind, extra, prompts))

    return _recipe


def test_rounds_become_stages(on_policy):
    """`rounds: 3` → stages self-round1, self-round2, self: each samples once; rounds 2 and 3 continue the adapter;
    only the last has the probes and gates; `reference: previous` kept (each round's reference is the round before).
    If this fails, rounds retrain from scratch, or a gate stops the run on an intermediate round."""
    stages = load_recipe(on_policy()).recipe.stages
    assert [s.name for s in stages] == ["warm", "self-round1", "self-round2", "self"]
    rounds = stages[1:]
    assert {s.data.generate.rounds for s in rounds} == {1}
    assert [s.adapter for s in rounds] == ["continue"] * 3
    assert [s.eval.prompts for s in rounds] == [None, None, "prompts.jsonl"]
    assert rounds[-1].eval.gates.max_loop_rate == 0.5 and rounds[0].eval.gates.max_loop_rate is None
    assert {s.reference for s in rounds} == {"previous"}


def test_adapter_new_applies_to_the_first_round_only(on_policy, write):
    """`adapter: new` on a stage with rounds: round 1 starts a fresh adapter, later rounds continue it. If this
    fails, every round throws away the round before it."""
    text = _text().replace("reference: previous", "adapter: new")
    stages = load_recipe(write("recipe.yaml", text)).recipe.stages
    assert [s.adapter for s in stages[1:]] == ["new", "continue", "continue"]


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        (", max_new_tokens: 0", "max_new_tokens", "whole number ≥ 1"),
        (", batch_size: 0", "batch_size", "whole number ≥ 1, or unset"),
        (", temperature: 0", "temperature", "> 0"),
        (", top_p: 1.5", "top_p", "(0, 1]"),
        (", min_chosen_score: 2", "min_chosen_score", "[0, 1]"),
        (", scorers: {consise: 1}", "scorers.consise", "did you mean 'concise'"),
        (", reward_model: rm", "reward_model", "does not weight it"),
        (", columns: {answer: a}", "columns.answer", "maps only"),
        (", scorers: {concise: 1, reward_model: 0.5}", "scorers.reward_model", "needs `reward_model`"),
        (", negatives: 4", "samples", "cannot give a chosen answer and 4"),
    ],
)
def test_bad_settings_are_one_line_at_their_key(on_policy, extra, key, words):
    """Each bad `data.generate` value is reported at `stages[1].data.generate.<key>` with what to do. If this
    fails, a bad setting reaches sampling (a crash minutes into a run) or is silently used."""
    with pytest.raises(AlignError) as caught:
        load_recipe(on_policy(extra=extra))
    message = str(caught.value)
    assert f"stages[1].data.generate.{key}" in message and words in message, message


def test_a_missing_prompts_file_is_named(on_policy):
    """A prompts file that does not exist is reported at its key before any model loads."""
    with pytest.raises(AlignError, match=r"stages\[1\]\.data\.generate\.prompts: no such file"):
        load_recipe(on_policy(prompts="missing.jsonl"))


def test_a_stage_needs_sources_or_generate(write, on_policy):
    """Without `train` sources and without `generate` a stage has no rows: said at data.train."""
    text = _text().replace(
        "      generate: {prompts: prompts.jsonl, samples: 3, rounds: 3}\n", "      eval_fraction: 0.1\n"
    )
    with pytest.raises(AlignError, match=r"data\.train.*data\.generate"):
        load_recipe(write("recipe.yaml", text))


def test_a_round_name_may_not_clash(write, on_policy):
    """A stage already named `self-round1` clashes with the first round of `self`: one error, not overwritten
    outputs."""
    text = _text().replace("name: warm", "name: self-round1")
    with pytest.raises(AlignError, match="two stages are named 'self-round1'"):
        load_recipe(write("recipe.yaml", text))


def test_plan_bounds_generated_rows(on_policy):
    """`align plan`: 2 prompts × (3 samples + the one reference) give at most min(6 pairs, 2 per prompt) = 2 pairs
    per prompt → ≤4 rows per round, 4 kto rows per prompt → ≤8, 1 best answer per prompt → ≤2; cells marked ≤.
    If this fails, plan claims exact counts for rows that do not exist yet, or miscounts them."""
    from align.models import load_tokenizer
    from align.plan import format_plan, plan_stage

    for kind, bound in (("preference", 4), ("kto", 8), ("sft", 2)):
        extra = ", min_margin: 0" if kind == "preference" else ""
        overrides = ["training.per_device_train_batch_size=2", "training.num_train_epochs=1"]
        loaded = load_recipe(on_policy(kind=kind, extra=extra), overrides)
        tokenizer = load_tokenizer("tiny-llama", False)
        plan = plan_stage(loaded, loaded.recipe.stages[-1], tokenizer)
        assert (plan.generated_rows, plan.train_rows, plan.steps) == (bound, bound, bound // 2), kind
        assert plan.train_tokens > 0
        table = format_plan([plan])
        assert f"≤{bound}" in table and table.splitlines()[-1].split()[1] == f"≤{bound}"


@pytest.mark.parametrize(
    ("kind", "extra"), [("kto", ", loop_pairs: true"), ("preference", ", loop_pairs: true, negatives: 2")]
)
def test_loop_pairs_only_where_pairs_are_made(on_policy, kind, extra):
    """`loop_pairs` makes one-against-one pairs: refused at its key in a kto stage and with `negatives: 2`. If this
    fails, the setting is silently ignored there."""
    with pytest.raises(AlignError) as caught:
        load_recipe(on_policy(kind=kind, extra=extra))
    assert "stages[1].data.generate.loop_pairs: makes pairs" in str(caught.value)


def test_plan_bounds_count_the_greedy_answer_and_loop_pairs(on_policy):
    """2 prompts × (3 samples + greedy + reference) = 5 answers: builder pairs capped at 2 per prompt, plus loop
    pairs from at most 4 looping sampled answers capped at 2 → ≤ (2 + 2) × 2 = 8 rows; kto: 5 rows per prompt → ≤10.
    If this fails, plan undercounts the rows (and steps) an on-policy stage can train on."""
    from align.models import load_tokenizer
    from align.plan import plan_stage

    tokenizer = load_tokenizer("tiny-llama", False)
    for kind, extra, bound in (
        ("preference", ", include_greedy: true, loop_pairs: true", 8),
        ("kto", ", include_greedy: true", 10),
    ):
        loaded = load_recipe(on_policy(kind=kind, extra=extra), ["training.per_device_train_batch_size=2"])
        assert plan_stage(loaded, loaded.recipe.stages[-1], tokenizer).generated_rows == bound, kind

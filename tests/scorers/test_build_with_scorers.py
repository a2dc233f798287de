"""`align data build` ranked by align's scorers other than the concise score alone: the scorer set ranks, the concise
metrics still guard and label, the report names the scorers, and the CLI runs a real (tiny) reward model."""

import json

import pytest

from align.data.pair_builder import BuildOptions, build_pairs
from align.errors import AlignError
from align.scorers import ScoreItem, ScorerSet, ScorerSettings
from tests.data.test_pair_builder import EGGS, GOOD, KEY_POINTS, VAGUE, VERBOSE, check_accounting, prompt

LOOPING = (
    "1. Bring water to a rolling boil. 2. Boil the eggs 11 minutes. 3. Use an ice bath. 4. Boil the eggs 11 minutes."
)


def test_a_scorer_set_ranks_the_answers_in_its_own_units(register_fake):
    """A judge preferring VERBOSE (9) > GOOD (5) > VAGUE (2) ranks unscored answers instead of the concise score:
    VERBOSE is chosen over both others, margins are the judge's raw differences (4 and 7, then GOOD over VAGUE 3),
    and the report says what ranked. If this fails `--scorer` does not reach the ranking."""
    register_fake("judge", {VERBOSE: 9.0, GOOD: 5.0, VAGUE: 2.0})
    rows, report = build_pairs(
        [prompt(GOOD, VERBOSE, VAGUE, meta={"key_points": KEY_POINTS}, text=EGGS)], BuildOptions(scorers={"judge": 1})
    )
    assert [(row["chosen"], row["rejected"], row["margin"]) for row in rows] == [
        (VERBOSE, VAGUE, 7.0),
        (VERBOSE, GOOD, 4.0),
        (GOOD, VAGUE, 3.0),
    ]
    assert (report.ranked_by, report.scorers) == ("scorers", {"judge": 1.0})
    assert "ranked by align's scorers (judge 1)" in report.to_text()
    check_accounting(report)


def test_a_looping_answer_the_scorers_rank_first_is_still_dropped(register_fake):
    """The concise score gives a looping answer 0; a reward model may love it. The chosen_loops guard holds."""
    register_fake("judge", {LOOPING: 9.0, GOOD: 5.0})
    rows, report = build_pairs(
        [prompt(GOOD, LOOPING, meta={"key_points": KEY_POINTS}, text=EGGS)], BuildOptions(scorers={"judge": 1})
    )
    assert rows == [] and report.dropped["chosen_loops"] == 1


def test_scored_input_ranked_by_data_refuses_scorers_it_would_ignore(register_fake):
    """--score data (the default) on scored input never asks the scorers: refused naming --scorer. With
    --score both the set vets the data's pairs: the data prefers VERBOSE (5) to GOOD (4), the judge does not."""
    register_fake("judge", {VERBOSE: 1.0, GOOD: 3.0, VAGUE: 0.0})
    data = prompt((VERBOSE, 5.0), (GOOD, 4.0), (VAGUE, 1.0), meta={"key_points": KEY_POINTS}, text=EGGS)
    with pytest.raises(AlignError, match=r"--scorer: judge 1: the input's answers carry scores and --score data"):
        build_pairs([data], BuildOptions(scorers={"judge": 1}))
    rows, report = build_pairs([data], BuildOptions(score="both", scorers={"judge": 1}))
    assert [(row["chosen"], row["rejected"]) for row in rows] == [(VERBOSE, VAGUE), (GOOD, VAGUE)]
    assert report.dropped["concise_disagrees"] == 1 and report.ranked_by == "both"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(scorers={"reward_model": 1.0}), r"--scorer: reward_model needs --reward-model PATH_OR_ID"),
        (dict(scorer_settings=ScorerSettings(reward_model="m")), r"--reward-model: is used by the reward_model scorer"),
        (dict(scorers={}), r"--scorer: give at least one scorer"),
        (dict(scorers={"concise": -1}), r"--scorer: concise: the weight must be a finite number > 0"),
    ],
)
def test_bad_scorer_options_name_the_flag(options, message):
    with pytest.raises(AlignError, match=message):
        BuildOptions(**options)


def multi_answer_rows() -> list[dict]:
    answers = [
        "1. Boil water. 2. Cook the eggs 11 minutes. 3. Cool them in ice water.",
        "Great question! It depends on many things, and everyone is different.",
        "Boil the eggs.",
    ]
    return [
        {"prompt": f"How do I boil eggs ({i})?", "completions": answers, "key_points": ["11 minutes"]} for i in range(3)
    ]


def test_cli_build_with_concise_and_a_reward_model(tmp_path, capsys, reward_model_dir):
    """`align data build --scorer concise --scorer reward_model=0.5 --reward-model DIR` end to end: the report lists
    both scorers, and every written pair's chosen answer has the higher combined score (the ScorerSet's, margin
    rounded to 4 decimals). `--scorer reward_model` without `--reward-model`, or a folder that holds no model, is
    one line and exit 2."""
    from align.cli import main

    rows = multi_answer_rows()
    source = tmp_path / "multi.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    out = tmp_path / "pairs.jsonl"
    flags = ["--scorer", "concise", "--scorer", "reward_model=0.5", "--reward-model", str(reward_model_dir)]
    assert main(["data", "build", str(source), "-o", str(out), *flags]) == 0
    assert "ranked by align's scorers (concise 1, reward_model 0.5; z-scored per prompt)" in capsys.readouterr().out
    report = json.loads((tmp_path / "pairs.report.json").read_text())
    assert report["scorers"] == {"concise": 1.0, "reward_model": 0.5} and report["ranked_by"] == "scorers"
    assert report["options"]["scorer_settings"]["reward_model"] == str(reward_model_dir)

    settings = ScorerSettings(reward_model=str(reward_model_dir), device="cpu")
    groups = [[ScoreItem(row["prompt"], a, row["key_points"]) for a in row["completions"]] for row in rows]
    combined = ScorerSet({"concise": 1.0, "reward_model": 0.5}, settings).score_groups(groups)
    score = {
        (g[i].prompt, g[i].answer): s for g, scores in zip(groups, combined, strict=True) for i, s in enumerate(scores)
    }
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(written) == report["pairs_written"] > 0
    for pair in written:
        chosen, rejected = score[pair["prompt"], pair["chosen"]], score[pair["prompt"], pair["rejected"]]
        assert pair["margin"] == round(chosen - rejected, 4) > 0

    capsys.readouterr()  # the progress bars of loading the model above
    build = ["data", "build", str(source), "-o", str(out), "--scorer", "reward_model"]
    assert main(build) == 2
    needs = "reward_model needs --reward-model PATH_OR_ID (a local folder or Hub id of a reward model)"
    assert capsys.readouterr().err == f"error: --scorer: {needs}\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*build, "--reward-model", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --reward-model: '{empty}' is a folder without config.json, not a saved model; give")
    assert err.count("\n") == 1

"""Row selection for a stage: filters with counts, easy-to-hard order, and clear errors."""

import json
from pathlib import Path

import pytest

from align.curriculum import run_recipe
from align.errors import AlignError
from align.recipe import load_recipe
from align.selection import easy_to_hard, stage_rows

REPO = Path(__file__).resolve().parent.parent


def _rows(write, rows):
    return write("rows.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


def _recipe(write, data_yaml: str):
    return load_recipe(write("r.yaml", f"name: t\nstages:\n  - name: s\n    data: {data_yaml}\n"))


def _row(i, difficulty, margin, kind="verbose"):
    return {"prompt": f"q{i}", "chosen": "a", "rejected": "b", "difficulty": difficulty, "margin": margin, "kind": kind}


def test_filters_count_every_removed_row(write):
    """6 rows: kinds keep 5, difficulties keep 4 of those, min_margin keeps 2: the counts add up to 6."""
    _rows(
        write,
        [
            _row(0, "easy", 0.9),
            _row(1, "easy", 0.1),
            _row(2, "hard", 0.8),
            _row(3, "medium", 0.5),
            _row(4, "hard", 0.7, kind="vague"),
            _row(5, "easy", 0.3, kind="incomplete"),
        ],
    )
    loaded = _recipe(
        write,
        "{train: [{path: rows.jsonl}], kinds: [verbose, vague], difficulties: [easy, hard], "
        "min_margin: 0.6, order: easy_to_hard}",
    )
    train, held, counts = stage_rows(loaded, loaded.recipe.stages[0], seed=0)
    assert [r.prompt for r in train] == ["q0", "q2", "q4"]
    assert counts["filtered_by_kind"] == 1 and counts["filtered_by_difficulty"] == 1
    assert counts["filtered_by_margin"] == 1 and counts["train_rows_read"] == 6
    assert held == []


def test_source_filters_apply_to_their_own_source_only(write):
    """A source's `kinds` and `max_rows` cut that source alone: the other source keeps its incomplete rows; the cap
    draws a seeded sample in file order, the same on every load; the stage's own `max_rows` still caps the total.
    If they leaked to the other source, or the sample were not seeded, the rows below would differ."""
    write("a.jsonl", "".join(json.dumps(_row(i, "easy", 0.5, kind=k)) + "\n" for i, k in enumerate("vvii")))
    many = [_row(10 + i, "hard", 0.5, kind="incomplete" if i % 2 else "verbose") for i in range(20)]
    write("b.jsonl", "".join(json.dumps(r) + "\n" for r in many))
    data = "{train: [{path: a.jsonl}, {path: b.jsonl, kinds: [incomplete], max_rows: 3}], order: as_is}"
    loaded = _recipe(write, data)
    train, _, counts = stage_rows(loaded, loaded.recipe.stages[0], seed=0)
    prompts = [r.prompt for r in train]
    assert prompts[:4] == ["q0", "q1", "q2", "q3"]  # source a untouched, its incomplete rows (q2, q3) kept
    from_b = prompts[4:]
    assert len(from_b) == 3 and from_b == sorted(from_b, key=lambda p: int(p[1:]))  # file order
    assert all(int(p[1:]) % 2 == 1 for p in from_b)  # b's incomplete rows only (odd i)
    assert counts["filtered_by_source_kind"] == 10 and counts["unused_by_source_max_rows"] == 7
    again = _recipe(write, data)
    assert [r.prompt for r in stage_rows(again, again.recipe.stages[0], seed=0)[0]] == prompts
    capped = _recipe(write, data.replace("order: as_is", "order: as_is, max_rows: 5"))
    assert len(stage_rows(capped, capped.recipe.stages[0], seed=0)[0]) == 5


def test_source_max_rows_must_be_positive(write):
    _rows(write, [_row(0, "easy", 0.5)])
    with pytest.raises(AlignError, match=r"stages\[0\]\.data\.train\[0\]\.max_rows: 0 must be a positive"):
        _recipe(write, "{train: [{path: rows.jsonl, max_rows: 0}]}")


def test_easy_to_hard_sorts_by_difficulty_then_margin():
    """Easy before medium before hard; within a difficulty the clearer pair (larger margin) first; stable."""
    from align.data.rows import PreferenceRow

    specs = [("hard", 0.2), ("easy", 0.1), ("medium", 0.5), ("easy", 0.9), ("hard", 0.6)]
    rows = [PreferenceRow(f"q{i}", "a", "b", meta={"difficulty": d, "margin": m}) for i, (d, m) in enumerate(specs)]
    assert [r.prompt for r in easy_to_hard(rows)] == ["q3", "q1", "q2", "q4", "q0"]


def test_missing_difficulty_or_margin_is_named(write):
    _rows(write, [_row(0, "easy", 0.5), {"prompt": "q", "chosen": "a", "rejected": "b", "margin": "high"}])
    with pytest.raises(AlignError, match=r"rows.jsonl:2: margin: needs a numeric margin"):
        loaded = _recipe(write, "{train: [{path: rows.jsonl}], min_margin: 0.1}")
        stage_rows(loaded, loaded.recipe.stages[0], seed=0)
    with pytest.raises(AlignError, match=r"rows.jsonl:2: difficulty: order easy_to_hard needs a difficulty"):
        loaded = _recipe(write, "{train: [{path: rows.jsonl}], order: easy_to_hard}")
        stage_rows(loaded, loaded.recipe.stages[0], seed=0)


def test_order_conflicting_with_a_random_sampler_is_a_recipe_error(write):
    _rows(write, [_row(0, "easy", 0.5)])
    text = (
        "name: t\nstages:\n  - name: s\n    data: {train: [{path: rows.jsonl}], order: as_is}\n"
        "    training: {train_sampling_strategy: random}\n"
    )
    with pytest.raises(AlignError, match="needs the sequential sampler"):
        load_recipe(write("r.yaml", text))


@pytest.mark.slow
def test_training_consumes_rows_easy_to_hard(tiny_model_dir, tmp_path):
    """Shipped pairs: verbose (easy, chosen always shorter) ... incomplete (hard, chosen always longer). Trained
    easy-to-hard, the first logged step has every chosen shorter and the last none: the sampler kept the order."""
    loaded = load_recipe(
        REPO / "recipes" / "tiny" / "dpo.yaml",
        [f"model.name={tiny_model_dir}", "stages.concise.data.kinds=[]", "stages.concise.data.order=easy_to_hard"],
    )
    run_recipe(loaded, tmp_path / "out")
    rows = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    fractions = [r["lengths/chosen_shorter_frac"] for r in rows if "loss" in r]
    assert fractions[0] == 1.0 and fractions[-1] == 0.0


def test_sources_in_other_formats_mix_by_weight(write):
    """A CSV with its own column names and a JSONL file, mixed 2:1 into 6 rows: 4 + 2, reported per source."""
    write("a.csv", "question,good,bad\n" + "".join(f"q{i},short {i},long answer {i}\n" for i in range(10)))
    _rows(write, [_row(i, "easy", 0.5) for i in range(10)])
    loaded = _recipe(
        write,
        "{train: [{path: a.csv, columns: {prompt: question, chosen: good, rejected: bad}, weight: 2.0}, "
        "{path: rows.jsonl}], mix_total: 6}",
    )
    train, _, counts = stage_rows(loaded, loaded.recipe.stages[0], seed=0)
    assert len(train) == 6
    assert sum(r.prompt.startswith("q") and r.chosen.startswith("short") for r in train) == 4
    used = [entry["used"] for entry in counts["mixture"]["sources"]]
    assert used == [4, 2] and counts["mixture"]["total"] == 6


def test_hub_ids_pass_validation_and_missing_paths_do_not(write):
    _rows(write, [_row(0, "easy", 0.5)])
    assert _recipe(write, "{train: [{path: someone/pairs}]}").recipe.stages[0].data.train[0].path == "someone/pairs"
    with pytest.raises(AlignError, match=r"stages\[0\]\.data\.train\[0\]\.path: no such file"):
        _recipe(write, "{train: [{path: ./missing.jsonl}]}")


BAD_ROWS = [
    '{"prompt": "q9", "chosen": ',  # line 2: broken JSON
    json.dumps({"prompt": "q8", "chosen": "", "rejected": "b"}),  # line 3: empty chosen
    json.dumps(
        {"prompt": "q0", "chosen": "a", "rejected": "b", "difficulty": "easy", "margin": 0.5, "kind": "verbose"}
    ),  # line 4: duplicate of line 1
]


def _bad_file(write):
    good = [json.dumps(_row(i, "easy", 0.5)) for i in range(1, 4)]
    return write("rows.jsonl", "\n".join([json.dumps(_row(0, "easy", 0.5)), *BAD_ROWS, *good]) + "\n")


def test_a_bad_row_stops_the_stage_naming_file_line_and_field(write):
    """Default `bad_rows: error`: the first bad row is an error at its line; if this fails, bad data trains."""
    _bad_file(write)
    loaded = _recipe(write, "{train: [{path: rows.jsonl}]}")
    with pytest.raises(AlignError, match=r"rows.jsonl:2: broken JSON"):
        stage_rows(loaded, loaded.recipe.stages[0], seed=0)


def test_dropped_rows_are_counted_by_reason_and_logged(write, caplog):
    """`bad_rows: drop`: 3 bad rows of 7 are left out and each is counted under its reason, in the counts that go to
    summary.json and in the log. If this fails, rows vanish silently."""
    _bad_file(write)
    loaded = _recipe(write, "{train: [{path: rows.jsonl}], bad_rows: drop}")
    with caplog.at_level("WARNING"):
        train, _, counts = stage_rows(loaded, loaded.recipe.stages[0], seed=0)
    assert sorted(r.prompt for r in train) == ["q0", "q1", "q2", "q3"]
    assert counts["dropped_bad_rows"] == {"unreadable": 1, "empty_field": 1, "duplicate": 1}
    logged = caplog.text
    assert "dropped 1 row(s): duplicate row" in logged and "rows.jsonl:2: broken JSON" in logged


def test_a_row_repeated_across_sources_is_a_duplicate(write):
    """The same pair in two train sources would double its weight: an error, or a counted drop."""
    _rows(write, [_row(0, "easy", 0.5), _row(1, "easy", 0.5)])
    write("more.jsonl", json.dumps(_row(1, "easy", 0.5)) + "\n" + json.dumps(_row(2, "easy", 0.5)) + "\n")
    loaded = _recipe(write, "{train: [{path: rows.jsonl}, {path: more.jsonl}]}")
    with pytest.raises(AlignError, match=r"more.jsonl:1: duplicates .*rows.jsonl:2"):
        stage_rows(loaded, loaded.recipe.stages[0], seed=0)
    loaded = _recipe(write, "{train: [{path: rows.jsonl}, {path: more.jsonl}], bad_rows: drop}")
    train, _, counts = stage_rows(loaded, loaded.recipe.stages[0], seed=0)
    assert len(train) == 3 and counts["dropped_bad_rows"] == {"duplicate": 1}


def test_sft_rows_read_from_csv_with_a_column_map(write):
    """SFT sources go through the same readers as pairs: a CSV with its own column names works in an sft stage."""
    write("sft.csv", "question,answer\nq1,Run ls.\nq2,Run pwd.\n")
    loaded = load_recipe(
        write(
            "r.yaml",
            "name: t\nstages:\n  - name: s\n    kind: sft\n    data: {train: [{path: "
            "sft.csv, columns: {prompt: question, completion: answer}}]}\n",
        )
    )
    train, _, _ = stage_rows(loaded, loaded.recipe.stages[0], seed=0)
    assert sorted((r.prompt, r.completion) for r in train) == [("q1", "Run ls."), ("q2", "Run pwd.")]


def test_duplicates_across_csv_sources_name_rows_not_lines(write):
    """CSV rows are numbered as rows (the header is not a data row): `a.csv row 2`, not `a.csv:2`, which would point
    one line off in an editor."""
    write("a.csv", "prompt,chosen,rejected\nq0,a,b\nq1,a,b\n")
    write("b.csv", "prompt,chosen,rejected\nq1,a,b\nq2,a,b\n")
    loaded = _recipe(write, "{train: [{path: a.csv}, {path: b.csv}]}")
    with pytest.raises(AlignError, match=r"b.csv row 1: duplicates .*a.csv row 2 \(same prompt and answers\)"):
        stage_rows(loaded, loaded.recipe.stages[0], seed=0)

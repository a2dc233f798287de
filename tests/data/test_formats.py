"""Data formats: every container reads to the same records, every format normalises to rows, errors name file,
line/row and field, and mixing sources is weighted, seeded and reports what each source gave."""

import csv
import json
import logging

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from align.data.formats import (
    FormatOptions,
    Location,
    ScoredPrompt,
    detect_format,
    load_source,
    mix_sources,
    normalise_conversational,
    normalise_implicit_prompt,
    normalise_scored,
    normalise_standard,
    read_records,
)
from align.data.formats.sources import _apportion
from align.data.rows import PreferenceRow
from align.errors import AlignError

AT = Location("p.jsonl", 7, by_line=True)
ROWS = [
    {"prompt": "q1", "chosen": "a1", "rejected": "b1", "kind": "verbose"},
    {"prompt": "q2", "chosen": "a2", "rejected": "b2", "kind": "vague"},
]


def user(text):
    return {"role": "user", "content": text}


def bot(text):
    return {"role": "assistant", "content": text}


def _error(call, *args, **kwargs) -> str:
    with pytest.raises(AlignError) as info:
        call(*args, **kwargs)
    (problem,) = info.value.problems
    return str(problem)


@pytest.fixture
def save(tmp_path, monkeypatch):
    """`save(kind, rows)` → a path (or Hub id) holding `rows` as JSONL, JSON, CSV, Parquet, save_to_disk or Hub."""

    def _save(kind: str, rows: list[dict], name: str = "p") -> str:
        path = tmp_path / name
        if kind == "jsonl":
            path = path.with_suffix(".jsonl")
            path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        elif kind == "json":
            path = path.with_suffix(".json")
            path.write_text(json.dumps(rows), encoding="utf-8")
        elif kind == "csv":
            path = path.with_suffix(".csv")
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows({k: v if isinstance(v, str) else json.dumps(v) for k, v in r.items()} for r in rows)
        elif kind == "parquet":
            path = path.with_suffix(".parquet")
            pq.write_table(pa.Table.from_pylist(rows), path)
        elif kind == "saved":
            datasets.Dataset.from_list(rows).save_to_disk(str(path))
        else:
            monkeypatch.setattr(datasets, "load_dataset", lambda name, split: datasets.Dataset.from_list(rows))
            return "org/prefs"
        return str(path)

    return _save


KINDS = ["jsonl", "json", "csv", "parquet", "saved", "hub"]


# --- readers -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_container_reads_the_same_rows(save, kind):
    """If this fails, one container loses columns, reorders rows, or turns a K-negatives list into a string."""
    rows = [{**ROWS[0], "rejected": ["b1", "c1"]}, {**ROWS[1], "rejected": ["b2", "c2"]}]
    loaded = load_source(save(kind, rows))
    assert [(r.prompt, r.chosen, r.rejected, r.meta) for r in loaded] == [
        ("q1", "a1", ["b1", "c1"], {"kind": "verbose"}),
        ("q2", "a2", ["b2", "c2"], {"kind": "vague"}),
    ]
    assert [r.line for r in loaded] == [1, 2]


@pytest.mark.parametrize(
    ("kind", "location"),
    [("jsonl", "p.jsonl:2"), ("json", "p.json row 2"), ("csv", "p.csv row 2"), ("parquet", "p.parquet row 2")]
    + [("saved", "p row 2"), ("hub", "org/prefs[train] row 2")],
)
def test_record_locations(save, kind, location):
    """Locations are how users find a bad row: a JSONL line number, else a 1-based row index (never a CSV line)."""
    records = list(read_records(save(kind, ROWS)))
    assert [r.number for r in records] == [1, 2]
    assert records[1].location.endswith(location)
    error = _error(load_source, save(kind, [ROWS[0], {**ROWS[1], "chosen": " "}]))
    assert f"{location}: chosen: is empty" in error


def test_jsonl_numbers_are_line_numbers(write):
    """Blank lines are skipped but counted, so the number still points at the right line in an editor."""
    records = list(read_records(str(write("p.jsonl", json.dumps(ROWS[0]) + "\n\n" + json.dumps(ROWS[1]) + "\n"))))
    assert [(r.number, r.location.rsplit("/", 1)[-1]) for r in records] == [(1, "p.jsonl:1"), (3, "p.jsonl:3")]


@pytest.mark.parametrize("wrapper", ["data", "rows"])
def test_json_object_wrappers(write, wrapper):
    """`{"data": [...]}` and `{"rows": [...]}` are common exports; rejecting them would force users to re-save."""
    loaded = load_source(write("p.json", json.dumps({wrapper: ROWS})))
    assert [r.prompt for r in loaded] == ["q1", "q2"]


def test_csv_cells_holding_json_are_parsed_and_prose_is_not(write):
    """A `rejected` cell `["b","c"]` is K negatives; a prompt "[citation needed]" is text; a BOM is not a column."""
    text = '\ufeffprompt,chosen,rejected\n[citation needed],a,"[""b"", ""c""]"\n'
    (row,) = load_source(write("p.csv", text))
    assert (row.prompt, row.rejected) == ("[citation needed]", ["b", "c"])


def test_saved_dataset_dict_picks_the_split(tmp_path):
    """A DatasetDict folder holds several splits; reading the wrong one would train on eval data."""
    folder = tmp_path / "dd"
    splits = {"train": [ROWS[0]], "test": [ROWS[1]]}
    datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in splits.items()}).save_to_disk(str(folder))
    assert [r.prompt for r in load_source(folder)] == ["q1"]
    assert [r.prompt for r in load_source(folder, split="test")] == ["q2"]
    assert "split: has no split 'dev'; splits: train, test" in _error(load_source, folder, split="dev")


def test_hub_id_goes_to_load_dataset_with_the_split(monkeypatch):
    """A bare `owner/name` that is not a local path is a Hub dataset, loaded with the requested split."""
    calls = []

    def fake(name, split):
        calls.append((name, split))
        return datasets.Dataset.from_list(ROWS)

    monkeypatch.setattr(datasets, "load_dataset", fake)
    rows = load_source("org/prefs", split="validation")
    assert calls == [("org/prefs", "validation")] and rows[1].source == "org/prefs[validation]"


def test_hub_failure_is_a_user_error(monkeypatch):
    """Network or auth failures must be one line naming the id, not a traceback from deep inside datasets."""

    def fail(name, split):
        raise ConnectionError("offline\nlong details")

    monkeypatch.setattr(datasets, "load_dataset", fail)
    assert (
        _error(load_source, "org/prefs") == "org/prefs: cannot load from the Hugging Face Hub (split 'train'): offline"
    )


@pytest.mark.parametrize("name", ["missing.jsonl", "data/missing", "./missing", "a/b/c", "/abs/missing"])
def test_missing_path_is_no_such_file_not_a_hub_call(tmp_path, monkeypatch, name):
    """A typo in a path must say "no such file"; asking the Hub about it would give a confusing network error.

    `data/missing` has a Hub id's shape, but `data` is a local folder, so it was meant as a path.
    """
    (tmp_path / "data").mkdir()
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("asked the Hub about a path"))
    error = _error(read_records, name, base_dir=tmp_path)
    assert error.endswith(": no such file") and "missing" in error.split(":")[0] + "a/b/c"


def test_relative_paths_resolve_against_base_dir(tmp_path, save):
    """Recipes name data relative to their own folder, not to wherever the command was run."""
    save("jsonl", ROWS, name="sub")
    assert len(load_source("sub.jsonl", base_dir=tmp_path)) == 2


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("p.json", '[{"prompt": "q",\n "chosen": }]', "p.json:2: broken JSON"),
        ("p.json", '{"prompts": []}', "p.json: must be a JSON array of row objects"),
        (
            "p.json",
            '[{"prompt": "q", "chosen": "a", "rejected": "b"}, 3]',
            "p.json row 2: each row must be a JSON object, got int",
        ),
        ("p.csv", "prompt,chosen,rejected\nq,a,b\nq,a\n", "p.csv row 2: has 2 cells but the header has 3"),
        ("p.csv", "prompt,chosen,rejected\nq,a,b,extra\n", "p.csv row 1: has 4 cells but the header has 3"),
        ("p.csv", "prompt,chosen,chosen,rejected\nq,a,b,c\n", "p.csv:1: the header repeats column(s) chosen"),
        ("p.parquet", "not parquet at all", "p.parquet: cannot read as Parquet"),
        ("p.txt", "prompt chosen rejected", "p.txt: unknown file type '.txt'"),
    ],
)
def test_unreadable_files_are_named(write, name, content, expected):
    """If these fail, a broken file crashes with a parser traceback, or loses cells/columns silently."""
    assert expected in _error(load_source, write(name, content))


def test_non_utf8_csv_names_the_line(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(b"prompt,chosen,rejected\nq,caf\xe9,b\n")
    assert "p.csv:2: not UTF-8" in _error(load_source, path)


def test_plain_folder_is_not_a_dataset(tmp_path):
    """A folder without save_to_disk's files is a mistake to name, not something to guess at."""
    (tmp_path / "folder").mkdir()
    assert "folder: is a folder but not one written by datasets' save_to_disk" in _error(
        load_source, tmp_path / "folder"
    )


def test_empty_source_is_an_error(write):
    assert "has no rows" in _error(load_source, write("p.jsonl", "\n"))


# --- formats ------------------------------------------------------------------------------------------------------


def test_standard_keeps_extra_columns_and_k_negatives():
    row = normalise_standard({"prompt": "q", "chosen": "a", "rejected": ["b", "c"], "id": 3}, AT)
    assert (row.rejected, row.num_rejected, row.meta, row.source, row.line) == (["b", "c"], 2, {"id": 3}, "p.jsonl", 7)


def test_conversational_single_turn_becomes_plain_strings():
    """One user turn and one assistant turn lose nothing as strings, so no structured copy is kept."""
    data = {"prompt": [user("q")], "chosen": [bot("a")], "rejected": [[bot("b")], [bot("c")]], "kind": "x"}
    row = normalise_conversational(data, AT)
    assert (row.prompt, row.chosen, row.rejected, row.meta) == ("q", "a", ["b", "c"], {"kind": "x"})
    assert normalise_conversational({"prompt": "q", "chosen": [bot("a")], "rejected": [bot("b")]}, AT).prompt == "q"


def test_conversational_multi_turn_keeps_the_messages():
    """A system prompt or earlier turns would be lost as plain strings; meta["messages"] carries them to training."""
    prompt = [{"role": "system", "content": "be brief"}, user("hi"), bot("hello"), user("q")]
    row = normalise_conversational({"prompt": prompt, "chosen": [bot("a")], "rejected": [bot("b")]}, AT)
    assert row.meta["messages"] == {"prompt": prompt, "chosen": [bot("a")], "rejected": [bot("b")]}
    assert row.prompt.startswith("system: be brief\n\nuser: hi") and (row.chosen, row.rejected) == ("a", "b")


@pytest.mark.parametrize("kind", ["parquet", "saved"])
def test_conversational_through_arrow_containers(save, kind):
    """Arrow gives every message struct all keys seen in the column (absent ones as None); they must not count."""
    rows = [
        {"prompt": [user("q")], "chosen": [bot("a")], "rejected": [bot("b")]},
        {"prompt": [{**user("r"), "name": "ann"}], "chosen": [bot("c")], "rejected": [bot("d")]},
    ]
    first, second = load_source(save(kind, rows))
    assert "messages" not in first.meta and second.meta["messages"]["prompt"] == [{**user("r"), "name": "ann"}]


@pytest.mark.parametrize(
    ("chosen", "rejected", "expected"),
    [
        ("Q: what is 2+2?\nA: 4", "Q: what is 2+2?\nA: fourteen", ("Q: what is 2+2?\nA: ", "4", "fourteen")),
        ("Say hi. Hello there", "Say hi. Help me", ("Say hi. ", "Hello there", "Help me")),
    ],
)
def test_implicit_prompt_from_strings_cuts_at_a_word_boundary(chosen, rejected, expected):
    """ "Hel" is shared by Hello/Help: cutting mid-word would teach the model a prompt ending in half a word."""
    row = normalise_implicit_prompt({"chosen": chosen, "rejected": rejected}, AT)
    assert (row.prompt, row.chosen, row.rejected) == expected
    assert row.prompt + row.chosen == chosen


def test_implicit_prompt_from_messages_and_k_negatives():
    shared = [user("q1"), bot("a1"), user("q2")]
    data = {"chosen": shared + [bot("good")], "rejected": [shared + [bot("bad")], shared + [bot("worse")]]}
    row = normalise_implicit_prompt(data, AT)
    assert (row.chosen, row.rejected) == ("good", ["bad", "worse"])
    assert row.meta["messages"]["prompt"] == shared and row.meta["messages"]["rejected"][1] == [bot("worse")]
    strings = normalise_implicit_prompt({"chosen": "Q: x\nA: yes", "rejected": ["Q: x\nA: no", "Q: x\nA: nah"]}, AT)
    assert (strings.prompt, strings.rejected) == ("Q: x\nA: ", ["no", "nah"])


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"chosen": "Hello", "rejected": "Goodbye"}, "chosen: shares no prompt with rejected"),
        ({"chosen": "Q: x A: ok", "rejected": "Q: x A: ok sure"}, "chosen: is a prefix of the other transcript"),
        ({"chosen": [user("q"), bot("a")], "rejected": [user("r"), bot("b")]}, "chosen: shares no leading messages"),
        ({"chosen": [user("q"), bot("a")], "rejected": [user("q")]}, "rejected: is a prefix of the other transcript"),
        ({"chosen": [user("q"), user("x")], "rejected": [user("q"), user("y")]}, "chosen[1]: the transcripts first"),
        ({"chosen": 3, "rejected": "b"}, "chosen: must be a transcript string or a list of messages, got int"),
    ],
)
def test_implicit_prompt_errors(data, expected):
    """If these fail, rows with no prompt, or with nothing to compare, reach training as nonsense pairs."""
    assert f"p.jsonl:7: {expected}" in _error(normalise_implicit_prompt, data, AT)


def test_scored_single_and_named_scores():
    one = normalise_scored({"prompt": "q", "completions": [{"text": "a", "score": 4}, {"text": "b", "score": 1.5}]}, AT)
    assert isinstance(one, ScoredPrompt) and one.completions == [("a", {"score": 4.0}), ("b", {"score": 1.5})]
    assert one.totals() == [4.0, 1.5] and one.location == "p.jsonl:7"
    items = [
        {"text": "a", "scores": {"helpful": 4, "concise": 5}},
        {"text": "b", "scores": {"helpful": 5, "concise": 1}},
    ]
    data = {"prompt": "q", "completions": items, "id": 9}
    named = normalise_scored(data, AT, FormatOptions(score_key="helpful"))
    assert named.completions[0] == ("a", {"helpful": 4.0, "concise": 5.0}) and named.meta == {"id": 9}
    assert named.totals(score_key="helpful") == [4.0, 5.0]
    weighted = normalise_scored(data, AT, FormatOptions(score_weights={"helpful": 1, "concise": 0.5}))
    assert weighted.totals(weights={"helpful": 1, "concise": 0.5}) == [6.5, 5.5]


@pytest.mark.parametrize(
    ("completions", "options", "expected"),
    [
        ([{"text": "a", "score": 1}], {}, "completions: has 1 completion(s); a scored row needs at least 2"),
        ([{"text": "a", "score": "high"}, {"text": "b", "score": 1}], {}, "completions[0].score: must be a finite"),
        ([{"text": "a", "score": 1}, {"text": "b", "score": True}], {}, "completions[1].score: must be a finite"),
        ([{"text": "a", "scores": {"h": 1, "c": "x"}}, {"text": "b", "score": 1}], {}, "completions[0].scores.c"),
        (
            [{"text": "a", "scores": {"h": 1, "c": 2}}, {"text": "b", "scores": {"h": 1, "c": 2}}],
            {},
            "[0]: has several",
        ),
        (
            [{"text": "a", "scores": {"h": 1}}, {"text": "b", "scores": {"c": 1}}],
            {},
            "completions use different score names (c, h)",
        ),
        (
            [{"text": "a", "scores": {"h": 1}}, {"text": "b", "scores": {"c": 1}}],
            {"score_key": "h"},
            "[1]: has no score 'h'",
        ),
        ([{"text": "a", "score": 1}, {"score": 2}], {}, "completions[1].text: missing field"),
        ([{"text": "a", "score": 1}, {"text": "b"}], {}, "completions[1]: has no score while other completions"),
        ([{"text": "a", "score": 1, "scores": {"h": 1}}, {"text": "b", "score": 2}], {}, "[0]: give one of `score`"),
        ([{"text": "a", "score": 1}, 7], {}, "completions[1]: must be a string or an object"),
        ("a, b", {}, "completions: must be a list of {text, score} objects, got string"),
    ],
)
def test_scored_errors(completions, options, expected):
    """If these fail, a non-numeric or ambiguous score ranks completions by accident (or crashes the pair builder)."""
    data = {"prompt": "q", "completions": completions}
    error = _error(normalise_scored, data, AT, FormatOptions(**options))
    assert error.startswith("p.jsonl:7: completions") and expected in error


def test_scored_unscored_answers_and_labels():
    """If this fails, the pair builder cannot read "a prompt with several answers" (it scores those itself), or loses
    a completion's own labels such as `kind`, which the built pairs carry into recipes' `kinds` filters."""
    plain = normalise_scored({"prompt": "q", "completions": ["a", {"text": "b", "kind": "vague"}]}, AT)
    assert plain.completions == [("a", {}), ("b", {})] and not plain.scored
    assert plain.labels == [{}, {"kind": "vague"}] and plain.line == 7
    scored = normalise_scored(
        {"prompt": "q", "completions": [{"text": "a", "score": 2, "kind": "x"}, {"text": "b", "score": 1}]}, AT
    )
    assert scored.scored and scored.labels == [{"kind": "x"}, {}]


def test_scored_through_csv(save):
    """Completions in a CSV arrive as a JSON cell; it must be parsed, not read as one long text."""
    rows = [{"prompt": "q", "completions": [{"text": "a", "score": 2}, {"text": "b", "score": 1}]}]
    (scored,) = load_source(save("csv", rows))
    assert scored.completions == [("a", {"score": 2.0}), ("b", {"score": 1.0})]


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        ({"prompt": "q", "chosen": "a", "rejected": ["b", "c"]}, "standard"),
        ({"prompt": [user("q")], "chosen": [bot("a")], "rejected": [bot("b")]}, "conversational"),
        ({"prompt": "q", "chosen": [bot("a")], "rejected": [bot("b")]}, "conversational"),
        ({"chosen": "q a", "rejected": "q b"}, "implicit_prompt"),
        ({"prompt": "q", "completions": []}, "scored"),
    ],
)
def test_detect_format(data, fmt):
    assert detect_format(data) == fmt


def test_detect_format_failure_lists_the_columns(save):
    error = _error(load_source, save("csv", [{"question": "q", "answer": "a"}]))
    assert "p.csv row 1: cannot tell the data format from its columns (question, answer)" in error


def test_auto_holds_every_row_to_the_first_rows_format(write):
    """One file, one format: a conversational row in a standard file is named, with the format it looks like."""
    lines = [ROWS[0], {"prompt": [user("q")], "chosen": [bot("a")], "rejected": [bot("b")]}]
    error = _error(load_source, write("p.jsonl", "".join(json.dumps(x) + "\n" for x in lines)))
    assert "p.jsonl:2: prompt: must be a string, got list" in error
    assert "looks like 'conversational' data, but" in error and "p.jsonl:1 made the source 'standard'" in error


# --- column mapping -----------------------------------------------------------------------------------------------

MAPPED = [
    (
        "standard",
        {"question": "q", "good": "a", "bad": "b"},
        {"prompt": "question", "chosen": "good", "rejected": "bad"},
    ),
    (
        "conversational",
        {"q": [user("q")], "good": [bot("a")], "rejected": [bot("b")]},
        {"prompt": "q", "chosen": "good"},
    ),
    ("implicit_prompt", {"good": "Q: q\nA: a", "bad": "Q: q\nA: b"}, {"chosen": "good", "rejected": "bad"}),
    (
        "scored",
        {"q": "q", "cands": [{"text": "a", "score": 1}, {"text": "b", "score": 0}]},
        {"prompt": "q", "completions": "cands"},
    ),
]


@pytest.mark.parametrize(("fmt", "data", "columns"), MAPPED)
def test_every_format_reads_mapped_columns(write, fmt, data, columns):
    """Public datasets name columns their own way; mapping must work for every format, in auto-detection too."""
    path = write("p.jsonl", json.dumps({**data, "extra": 1}) + "\n")
    (row,) = load_source(path, columns=columns)
    first_answer = row.completions[0][0] if fmt == "scored" else row.chosen
    prompt = "Q: q\nA: " if fmt == "implicit_prompt" else "q"
    assert (row.prompt, first_answer, row.meta) == (prompt, "a", {"extra": 1})
    assert load_source(path, format=fmt, columns=columns)[0] == row


def test_mapping_errors_name_the_users_columns(write):
    path = write("p.jsonl", json.dumps({"question": "q", "good": 3, "bad": "b"}) + "\n")
    columns = {"prompt": "question", "chosen": "good", "rejected": "bad"}
    assert "p.jsonl:1: good: must be a string, got int" in _error(load_source, path, columns=columns)
    missing = _error(load_source, path, format="standard", columns={**columns, "prompt": "query"})
    assert "p.jsonl:1: query: no such column (mapped from 'prompt'); columns here: question, good, bad" in missing
    unknown = _error(load_source, path, format="standard", columns={"promt": "question"})
    assert (
        "columns.promt: format 'standard' has no field 'promt' to map; its fields: prompt, chosen, rejected" in unknown
    )


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"prompt": "q", "chosen": "a"}, "p.csv row 1: rejected: missing field; standard rows need"),
        ({"prompt": "q", "chosen": "a", "rejected": "a"}, "p.csv row 1: chosen: chosen and rejected are identical"),
        ({"prompt": "q", "chosen": "a", "rejected": "[1, 2]"}, "p.csv row 1: rejected[0]: must be a string, got int"),
    ],
)
def test_standard_errors_in_csv_name_the_row(save, row, expected):
    """CSV errors say "row N" (the data row), since the CSV line number is off by the header."""
    assert expected in _error(load_source, save("csv", [row]), format="standard")


def test_conversational_wrong_types(write):
    cases = [
        ({"prompt": "q", "chosen": "a", "rejected": [bot("b")]}, "chosen: must be a non-empty list of {role, content}"),
        (
            {"prompt": [user("q")], "chosen": [user("a")], "rejected": [bot("b")]},
            "chosen[0].role: an answer must start",
        ),
        (
            {"prompt": [{"role": "human", "content": "q"}], "chosen": [bot("a")], "rejected": [bot("b")]},
            "prompt[0].role",
        ),
        ({"prompt": [user("q")], "chosen": [bot("a")], "rejected": [["x"]]}, "rejected[0][0]: must be a message"),
    ]
    for data, expected in cases:
        assert f"p.jsonl:7: {expected}" in _error(normalise_conversational, data, AT)


def test_k_must_match_across_a_source(save):
    """Batches are K+1 answers per prompt; mixed K in one source must be named, with both places."""
    error = _error(load_source, save("csv", [{**ROWS[0], "rejected": ["b", "c"]}, ROWS[1]]))
    assert "p.csv row 2: rejected: has 1 rejected answers but" in error and "p.csv row 1 has 2" in error


# --- mixing -------------------------------------------------------------------------------------------------------


def _sources():
    return [([f"a{i}" for i in range(50)], 1.0), ([f"b{i}" for i in range(50)], 3.0)]


def test_mix_with_total_draws_weighted_shares_without_replacement():
    mixed, report = mix_sources(_sources(), seed=0, total=20)
    assert len(mixed) == 20 == report["total"] and len(set(mixed)) == 20
    assert [(e["requested"], e["used"], e["short_by"]) for e in report["sources"]] == [(5, 5, 0), (15, 15, 0)]
    assert sum(x.startswith("a") for x in mixed) == 5


def test_mix_short_source_gives_all_it_has_and_is_reported(caplog):
    """Nothing is dropped or padded silently: a source smaller than its share shows up in the report and the log."""
    rows = [PreferenceRow("q", "a", f"b{i}", source="small.jsonl") for i in range(3)]
    with caplog.at_level(logging.WARNING):
        mixed, report = mix_sources([(rows, 1.0), (_sources()[0][0], 1.0)], seed=0, total=20)
    small = report["sources"][0]
    assert (small["source"], small["available"], small["requested"], small["used"], small["short_by"]) == (
        "small.jsonl",
        3,
        10,
        3,
        7,
    )
    assert len(mixed) == 13 and report["requested_total"] == 20 and "small.jsonl has 3 rows" in caplog.text


def test_mix_without_total_keeps_everything_in_a_seeded_interleave():
    """All rows kept, each source's own order kept (curricula may order rows), and the same seed, the same order."""
    mixed, report = mix_sources(_sources(), seed=1)
    assert sorted(mixed) == sorted(_sources()[0][0] + _sources()[1][0])
    assert [x for x in mixed if x.startswith("a")] == _sources()[0][0]
    assert {x[0] for x in mixed[:20]} == {"a", "b"} and report["total"] == 100
    assert mix_sources(_sources(), seed=1)[0] == mixed and mix_sources(_sources(), seed=2)[0] != mixed


def test_mix_is_seeded_with_total():
    assert mix_sources(_sources(), seed=3, total=30)[0] == mix_sources(_sources(), seed=3, total=30)[0]
    assert mix_sources(_sources(), seed=3, total=30)[0] != mix_sources(_sources(), seed=4, total=30)[0]


def test_shares_add_up_to_the_total():
    """Plain rounding of three equal thirds of 10 gives 9 rows; the shares must always sum to the total asked for."""
    assert (
        _apportion(10, [1, 1, 1]) == [4, 3, 3]
        and _apportion(7, [1, 1]) == [4, 3]
        and _apportion(5, [0.1, 9.9]) == [0, 5]
    )


@pytest.mark.parametrize(
    ("sources", "total", "expected"),
    [
        ([], None, "no sources"),
        ([([1], 0)], None, "sources[0]: weight 0 must be a positive number"),
        ([([1], 1)], 0, "total 0 must be"),
    ],
)
def test_mix_rejects_bad_weights_and_totals(sources, total, expected):
    assert expected in _error(mix_sources, sources, 0, total)

"""`align data inspect` and the linter behind it: every problem kind counted with its first rows, statistics
worked out by hand, exit codes 0/1/2, recipe mode with the stage's max_length."""

import json

import pytest

from align.cli import main
from align.data.issues import PROBLEM_KINDS
from align.data.lint import CLEAN, PROBLEMS, UNREADABLE, lint_source
from align.data.stats import distribution, row_statistics

GOOD = {"prompt": "How do I list files?", "chosen": "Run `ls -la`.", "rejected": "There are many ways to do it."}


def _jsonl(write, rows, name="d.jsonl"):
    return write(name, "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def _row(i, **fields):
    return {**GOOD, "prompt": f"{GOOD['prompt']} ({i})", **fields}


def test_every_jsonl_problem_kind_is_counted_with_its_line(tmp_path, write):
    """One row of each problem kind among good rows: if this fails, the linter misses or misfiles a kind of bad
    row, or stops at the first one instead of reporting all of them with their line numbers."""
    path = _jsonl(
        write,
        [
            _row(1),  # 1 good
            '{"prompt": "q", "chosen": ',  # 2 broken JSON
            '["not", "an", "object"]',  # 3 not an object
            {k: v for k, v in _row(4).items() if k != "chosen"},  # 4 missing chosen
            _row(5, rejected="   "),  # 5 empty rejected
            _row(6, chosen=["a", "list"]),  # 6 wrong type
            _row(7, rejected=_row(7)["chosen"]),  # 7 identical
            _row(1),  # 8 duplicate of line 1
            _row(9),  # 9 good
        ],
    )
    with path.open("ab") as handle:
        handle.write(b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n')  # 10 Latin-1, not UTF-8
    report = lint_source(path)
    problems = report.issues.to_dict()
    lines = {code: [int(first.split(":")[1]) for first in entry["first"]] for code, entry in problems.items()}
    assert lines == {
        "unreadable": [2, 3, 10],
        "missing_field": [4],
        "empty_field": [5],
        "wrong_type": [6],
        "identical": [7],
        "duplicate": [8],
    }
    assert report.rows_read == 10 and report.rows_ok == 2 and report.exit_code == PROBLEMS
    assert "d.jsonl:4: chosen: missing field" in problems["missing_field"]["first"][0]
    assert "not UTF-8" in problems["unreadable"]["first"][2]
    assert "duplicates" in problems["duplicate"]["first"][0] and "d.jsonl:1" in problems["duplicate"]["first"][0]


def test_csv_rows_with_wrong_cell_counts_are_unreadable_rows_not_a_crash(write):
    """A broken CSV row must be counted (row 2) while the rows after it are still read."""
    path = write("d.csv", "prompt,chosen,rejected\nq1,a,b\nq2,a\nq3,a,b\n")
    report = lint_source(path)
    assert report.issues.counts_by_code() == {"unreadable": 1} and report.rows_ok == 2
    assert "d.csv row 2: has 2 cells" in report.issues.to_dict()["unreadable"]["first"][0]


def test_mixed_number_of_negatives_is_counted_against_the_common_k(write):
    """Rows with K=2 among K=1 rows: the minority is reported as invalid, not the whole file rejected."""
    path = _jsonl(write, [_row(1), _row(2), _row(3, rejected=["x", "y"])])
    report = lint_source(path)
    assert report.issues.counts_by_code() == {"invalid": 1}
    assert "d.jsonl:3: rejected: has 2 rejected answers" in report.issues.to_dict()["invalid"]["first"][0]


def test_too_long_rows_are_found_with_the_tokenizer(write, tiny_model_dir):
    """Rows longer than max_length tokens (chat template included) are reported with their token counts; if this
    fails, users learn only from silently truncated training sequences."""
    from align.data.token_lengths import sequence_lengths
    from align.models import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    long_answer = "Run the command again and check the output. " * 30
    path = _jsonl(write, [_row(1), _row(2, rejected=long_answer)])
    prompt_len, (chosen_len, rejected_len) = sequence_lengths(
        tokenizer, _row(2)["prompt"], [GOOD["chosen"], long_answer]
    )
    limit = (chosen_len + rejected_len) // 2
    report = lint_source(path, tokenizer=tokenizer, max_length=limit)
    (first,) = report.issues.to_dict()["too_long"]["first"]
    assert first.startswith(f"{path}:2: rejected: {rejected_len} tokens (prompt {prompt_len}) > max_length {limit}")
    assert report.stats["length_unit"] == "tokens"
    assert report.stats["lengths"]["rejected"]["max"] == rejected_len - prompt_len


def test_distribution_and_statistics_match_hand_computation():
    """Nearest-rank percentiles of 1..10 are p50=5, p90=9; 2 of 3 pairs have the shorter chosen answer; a K=2 row
    counts as two pairs. If this fails, the reported distributions or shares are wrong."""
    from align.data.rows import PreferenceRow

    assert distribution(list(range(1, 11))) == {"min": 1, "p50": 5, "p90": 9, "max": 10, "mean": 5.5}
    rows = [
        PreferenceRow("q one", "Run ls.", "Well, it depends on many things really.", meta={"kind": "vague"}),
        PreferenceRow(
            "q two",
            "Open the file and edit it now.",
            ["Edit it.", "It may depend on what you like best."],
            meta={"kind": "incomplete"},
        ),
    ]
    stats = row_statistics(rows)
    assert stats["length_unit"] == "words" and stats["chosen_shorter_share"] == round(2 / 3, 4)
    assert stats["lengths"]["chosen"] == {"min": 2, "p50": 2, "p90": 7, "max": 7, "mean": 4.5}
    assert stats["kind_counts"] == {"incomplete": 1, "vague": 1}
    assert set(stats["scorer"]) == {"chosen", "rejected", "scorer_prefers_chosen"}


def test_cli_exit_codes_and_json(write, capsys):
    """0 for clean data, 1 when problems are found, 2 for input that cannot be read at all; --json carries the same
    counts. If this fails, scripts and CI cannot gate on the linter."""
    clean = _jsonl(write, [_row(1), _row(2)], "clean.jsonl")
    dirty = _jsonl(write, [_row(1), _row(1)], "dirty.jsonl")
    assert main(["data", "inspect", str(clean)]) == CLEAN
    assert "clean: 1 source(s), no problems" in capsys.readouterr().out
    assert main(["data", "inspect", str(dirty), "--json"]) == PROBLEMS
    payload = json.loads(capsys.readouterr().out)
    assert payload["exit_code"] == PROBLEMS and payload["sources"][0]["problems"]["duplicate"]["count"] == 1
    assert main(["data", "inspect", str(clean.with_name("absent.jsonl"))]) == UNREADABLE
    assert "no such file" in capsys.readouterr().out
    broken = write("broken.json", '[{"prompt": ')
    assert main(["data", "inspect", str(broken)]) == UNREADABLE


def test_recipe_mode_checks_every_stage_with_its_max_length(write, tiny_model_dir, capsys):
    """A two-stage recipe: the SFT source is linted as prompt → completion, the preference source against its own
    stage's max_length. If this fails, `inspect RECIPE` checks different rules than training applies."""
    _jsonl(write, [{"prompt": "q", "completion": "Run `ls`."}, {"prompt": "q2", "completion": ""}], "sft.jsonl")
    _jsonl(write, [_row(1), _row(2, rejected="word " * 200)], "pairs.jsonl")
    recipe = write(
        "r.yaml",
        f"""
name: lint
model: {{name: {tiny_model_dir}}}
stages:
  - name: warm
    kind: sft
    data: {{train: [{{path: sft.jsonl}}]}}
  - name: pairs
    data: {{train: [{{path: pairs.jsonl}}]}}
    training: {{max_length: 64}}
""",
    )
    assert main(["data", "inspect", str(recipe), "--json"]) == PROBLEMS
    sources = json.loads(capsys.readouterr().out)["sources"]
    by_stage = {s["stage"]: s for s in sources}
    assert by_stage["warm"]["format"] == "completion"
    assert by_stage["warm"]["problems"]["empty_field"]["count"] == 1
    assert by_stage["pairs"]["max_length"] == 64 and by_stage["pairs"]["problems"]["too_long"]["count"] == 1


def test_problem_kinds_are_all_documented_in_the_cli_help(capsys):
    """Every problem code the linter can report is named in `align data inspect --help` by its meaning."""
    with pytest.raises(SystemExit):
        main(["data", "inspect", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for needle in (
        "broken JSON",
        "not UTF-8",
        "missing or empty field",
        "wrong type",
        "identical",
        "duplicate",
        "max_length",
    ):
        assert needle in text
    assert len(PROBLEM_KINDS) == 8

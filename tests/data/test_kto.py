"""KTO rows (align/data/kto.py, the `kto` format in align/data/formats/unpaired.py): labels read strictly, bad rows
named by file, line and field (or counted with bad_rows: drop), pairs split into desirable and undesirable rows."""

import json

import pytest

from align.data import load_kto_rows, load_preference_rows
from align.data.formats import detect_format
from align.data.issues import RowIssues, drop_duplicates
from align.data.lint import lint_source
from align.errors import AlignError


def _jsonl(write, rows, name="k.jsonl"):
    return write(name, "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def _error(path, **kwargs) -> str:
    with pytest.raises(AlignError) as info:
        load_kto_rows(path, **kwargs)
    (problem,) = info.value.problems
    return str(problem)


GOOD = {"prompt": "How do I list files?", "completion": "Run `ls -la`.", "label": True}
GOOD_USER = {"role": "user", "content": "list files?"}


def bot(text: str) -> dict:
    return {"role": "assistant", "content": text}


def test_every_label_spelling_is_read_and_other_columns_kept(write):
    """JSON booleans, 1/0 and "true"/"FALSE" text give True/False; other columns land in `meta`. If this fails, a
    label is misread (an undesirable answer trained as desirable) or a filter column is lost."""
    labels = [True, False, 1, 0, "true", " FALSE ", "1", "0"]
    rows = [{**GOOD, "prompt": f"q{i}", "label": label, "kind": "verbose"} for i, label in enumerate(labels)]
    loaded = load_kto_rows(_jsonl(write, rows))
    assert [row.label for row in loaded] == [True, False, True, False, True, False, True, False]
    assert [row.line for row in loaded] == list(range(1, 9))
    assert loaded[0].meta == {"kind": "verbose"} and loaded[0].pair == ()


def test_rows_become_trls_unpaired_preference_examples(write):
    """A plain row gives trl's conversational `prompt`/`completion` message lists plus `label` (and plain strings
    for models without a chat template); a multi-turn prompt keeps all its messages. If this fails, KTOTrainer
    gets columns it does not read, or a conversation loses turns."""
    from trl.data_utils import is_conversational

    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, GOOD_USER]
    rows = [GOOD, {"prompt": turns, "completion": [{"role": "assistant", "content": "Run ls."}], "label": False}]
    plain, multi = load_kto_rows(_jsonl(write, rows))
    example = plain.to_conversational()
    assert example == {
        "prompt": [{"role": "user", "content": GOOD["prompt"]}],
        "completion": [{"role": "assistant", "content": GOOD["completion"]}],
        "label": True,
    }
    assert is_conversational(example)
    assert plain.to_text() == GOOD
    assert multi.to_conversational()["prompt"] == turns and multi.label is False
    assert multi.completion == "Run ls."


def test_columns_map_the_users_names_and_detection_finds_kto(write):
    """`columns: {completion: answer, label: good}` reads the user's own names, and auto-detection picks `kto` for
    prompt + completion + label (prompt + completion alone stays SFT). If this fails, a KTO file is read as SFT
    rows and its undesirable answers are imitated."""
    path = _jsonl(write, [{"prompt": "q", "answer": "a", "good": "false"}])
    (row,) = load_kto_rows(path, columns={"completion": "answer", "label": "good"})
    assert (row.prompt, row.completion, row.label) == ("q", "a", False)
    assert detect_format({"prompt": "q", "answer": "a", "good": 1}, {"completion": "answer", "label": "good"}) == "kto"
    assert detect_format({"prompt": "q", "completion": "a"}) == "completion"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"prompt": "q", "completion": "a"}', "k.jsonl:2: label: missing field; KTO rows need prompt, completion"),
        ('{"prompt": "q", "completion": "a", "label": "yes"}', "k.jsonl:2: label: must be true (desirable) or false"),
        ('{"prompt": "q", "completion": "a", "label": 2}', "k.jsonl:2: label: must be true (desirable) or false"),
        ('{"prompt": "q", "completion": "a", "label": 0.5}', "got float 0.5"),
        ('{"prompt": "q", "completion": "a", "label": null}', "k.jsonl:2: label: must be true (desirable) or false"),
        ('{"prompt": "q", "completion": " ", "label": true}', "k.jsonl:2: completion: is empty"),
        ('{"prompt": "q", "completion": 7, "label": true}', "k.jsonl:2: completion: must be a string or a list of"),
        ('{"prompt": "How do I list files?", "completion": "Run `ls -la`.", "label": false}', "k.jsonl:1 (same prompt"),
        ('{"prompt": "q", "completion": "a", "label": tru', "k.jsonl:2: broken JSON"),
    ],
)
def test_bad_rows_are_named_with_file_line_and_field(write, line, expected):
    """Each bad second row stops the load with one line naming it (the same answer labelled both ways is a
    duplicate of the first). If this fails, a bad label is guessed or a bad row trains silently."""
    assert expected in _error(_jsonl(write, [GOOD, line]))


def test_bad_rows_are_counted_by_kind_and_left_out_when_dropping(write):
    """With `issues` (bad_rows: drop): 2 good rows kept, the bad label counted as wrong_type, the null label as
    empty_field and the missing one as missing_field, each with its line. If this fails, drops are uncounted."""
    path = _jsonl(
        write,
        [
            GOOD,
            {"prompt": "q", "completion": "a", "label": "maybe"},
            {"prompt": "q", "completion": "a", "label": None},
            {"prompt": "q", "completion": "a"},
            {**GOOD, "prompt": "other"},
        ],
    )
    issues = RowIssues()
    rows = load_kto_rows(path, issues=issues)
    assert [row.line for row in rows] == [1, 5]
    assert issues.counts_by_code() == {"missing_field": 1, "empty_field": 1, "wrong_type": 1}
    assert "k.jsonl:2: label" in issues.to_dict()["wrong_type"]["first"][0]


def test_csv_labels_are_text_and_rows_are_numbered(write):
    """CSV cells are text: "true"/"0" are read, "y" is refused naming `k.csv row 2`. If this fails, a CSV KTO file
    cannot be used at all, or its errors point at a line the row is not on."""
    ok = write("ok.csv", "prompt,completion,label\nq,a,true\nq2,b,0\n")
    assert [row.label for row in load_kto_rows(ok)] == [True, False]
    bad = write("k.csv", "prompt,completion,label\nq,a,true\nq2,b,y\n")
    assert "k.csv row 2: label: must be true" in _error(bad)


def test_pairs_split_into_one_desirable_and_one_undesirable_row_per_rejected(write):
    """A pair gives (chosen, True) and (rejected, False); a K=2 row gives 1 + 2 rows; every row keeps its pair's
    columns and line. If this fails, a preference file cannot feed a KTO stage, or the `kinds` filter stops
    selecting whole pairs."""
    path = _jsonl(
        write,
        [
            {"prompt": "q", "chosen": "good", "rejected": ["bad1", "bad2"], "kind": "vague"},
            {"prompt": "q2", "chosen": "good2", "rejected": ["bad3", "bad4"], "kind": "verbose"},
        ],
    )
    rows = load_kto_rows(path)
    assert [(r.prompt, r.completion, r.label, r.line) for r in rows] == [
        ("q", "good", True, 1),
        ("q", "bad1", False, 1),
        ("q", "bad2", False, 1),
        ("q2", "good2", True, 2),
        ("q2", "bad3", False, 2),
        ("q2", "bad4", False, 2),
    ]
    assert {r.meta["kind"] for r in rows[:3]} == {"vague"}


def test_a_chosen_answer_shared_by_pairs_is_one_row_per_pair_not_a_duplicate(write):
    """The concise data pairs one chosen answer with several rejected ones: each pair gives it once (as trl's
    unpairing does), and the duplicate check across sources does not take those for repeats — while the same
    pair read twice still is one. If this fails, a stage with two pair sources stops on valid data."""
    pairs = [{"prompt": "q", "chosen": "good", "rejected": "bad1"}, {"prompt": "q", "chosen": "good", "rejected": "b2"}]
    rows = load_kto_rows(_jsonl(write, pairs))
    assert [r.completion for r in rows if r.label] == ["good", "good"]
    assert drop_duplicates(rows) == rows
    with pytest.raises(AlignError, match="duplicates"):
        drop_duplicates(rows + rows[:1])


def test_multi_turn_pairs_keep_their_messages(write):
    """A conversational pair with an earlier exchange gives rows whose conversational form keeps the whole prompt.
    If this fails, split rows train on a prompt cut down to its last turn."""
    prompt = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, GOOD_USER]
    pair = {"prompt": prompt, "chosen": [{"role": "assistant", "content": "ls"}], "rejected": [bot("many ways")]}
    chosen, rejected = load_kto_rows(_jsonl(write, [pair]))
    assert chosen.to_conversational()["prompt"] == prompt
    assert rejected.to_conversational()["completion"] == [bot("many ways")]
    assert (chosen.label, rejected.label) == (True, False)


def test_files_without_labels_or_pairs_are_refused_saying_what_to_do(write):
    """An SFT file (no label) and a scored file each get one line saying what to do; a preference stage refuses a
    KTO file pointing at `kind: kto`. If this fails, an unlabelled file trains every answer as desirable."""
    sft = _jsonl(write, [{"prompt": "q", "completion": "a"}], "s.jsonl")
    assert "without a label; add a `label` column" in _error(sft)
    scored = _jsonl(write, [{"prompt": "q", "completions": [{"text": "a", "score": 1}, {"text": "b", "score": 0}]}])
    assert "align data build" in _error(scored)
    with pytest.raises(AlignError, match="use it in a `kind: kto` stage"):
        load_preference_rows(_jsonl(write, [GOOD], "kto.jsonl"))


def test_the_linter_reads_kto_files_and_counts_labels(write):
    """`align data inspect` on a KTO file: the bad row with its line, desirable/undesirable counts and lengths. If
    this fails, the linter misreads KTO rows as pairs or cannot lint them."""
    path = _jsonl(
        write,
        [
            GOOD,
            {"prompt": "q", "completion": "a", "label": "perhaps"},
            {"prompt": "q3", "completion": "There are many ways to do it.", "label": False},
            {"prompt": "q4", "completion": "Use find.", "label": 1},
        ],
    )
    report = lint_source(path)
    assert report.format == "kto" and (report.rows_read, report.rows_ok) == (4, 3)
    assert "k.jsonl:2: label" in report.issues.to_dict()["wrong_type"]["first"][0]
    assert report.stats["label_counts"] == {"desirable": 2, "undesirable": 1}
    assert report.stats["lengths"]["undesirable"]["max"] == 7
    assert report.stats["lengths"]["desirable"]["max"] == 3

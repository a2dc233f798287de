"""Fuzzing data files with bad rows: every bad row is named (its JSONL line, or its CSV/JSON row) under the right
problem code and field, rows that are fine are not reported, and every row read is either kept or counted as a
problem (nothing dropped silently). Strict loading stops at the first bad row, naming it; `align data inspect`
exits 1 (2 for a file that cannot be read at all) without a traceback.

Mutants are seeded and deterministic. JSONL files start from the first rows of the shipped `data/concise/train.jsonl`
(pairs), `sft.jsonl` (prompt → completion) and `train_multi.jsonl` (K = 3 negatives); CSV and JSON-array files from
the pairs. Line 1 / row 1 always stays good, since auto-detection reads the format off the first readable row.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from align.cli import main
from align.data import issues as issues_module
from align.data.formats import load_source
from align.data.issues import RowIssues
from align.data.lint import CLEAN, PROBLEMS, UNREADABLE, lint_source, token_lengths
from align.errors import AlignError

REPO = Path(__file__).resolve().parents[2]
SEED = 20240611
ROWS = 50
HUGE = 200_000  # characters: a 200 KB answer
BASES = {"pairs": "train.jsonl", "sft": "sft.jsonl", "multi": "train_multi.jsonl"}
ANSWERS = {"pairs": ["chosen", "rejected"], "sft": ["completion"], "multi": ["chosen", "rejected"]}
FIELDS = {base: ["prompt", *answers] for base, answers in ANSWERS.items()}
JSONL_FILES_PER_BASE = 110
CSV_FILES, JSON_FILES = 60, 60
JSONL_CLASSES = (
    "truncated",
    "wrong_type",
    "missing_field",
    "empty_field",
    "identical",
    "duplicate",
    "bad_encoding",
    "not_object",
    "huge",
    "k_mismatch",
)
CSV_CLASSES = ("cell_count", "bad_quote", "wrong_type", "empty_field", "identical", "duplicate", "nul", "huge")
JSON_CLASSES = ("wrong_type", "missing_field", "empty_field", "identical", "duplicate", "not_object", "huge")


def _base_rows(base: str) -> list[dict]:
    lines = (REPO / "data" / "concise" / BASES[base]).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:ROWS]]


@dataclass
class Bad:
    """What one mutated row must be reported as: its problem code, and the field the problem names (None for a row
    that is unreadable or a repeat as a whole). Code None: a row that is fine (a huge one) and must not be reported."""

    kind: str
    code: str | None
    key: str | None = None
    duplicate_of: int | None = None  # the line/row a repeat names


@dataclass
class Case:
    """One mutated file: where it is, its format, and by line (JSONL) or row (CSV/JSON) what must be reported."""

    path: Path
    base: str
    expected: dict[int, Bad] = field(default_factory=dict)
    numbers: list[int] = field(default_factory=list)  # every row's line (JSONL) or row number, good and bad

    @property
    def rows(self) -> int:
        return len(self.numbers)

    @property
    def bad(self) -> dict[int, Bad]:
        return {n: bad for n, bad in self.expected.items() if bad.code}


def _huge_text(rng: random.Random) -> str:
    words = ["check", "the", "config", "then", "restart", "service", "and", "verify", "logs", "carefully"]
    out, size = [], 0
    while size < HUGE:
        word = rng.choice(words)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)


def _wrong_value(rng: random.Random, key: str):
    if key == "rejected":  # a list of strings is K negatives, not a wrong type; a list holding a number is
        return rng.choice([5, 2.5, True, {"text": "x"}, [5]])
    return rng.choice([5, 2.5, True, {"text": "x"}, ["a", "list"]])


def _wrong_key(key: str, value) -> str:
    return f"{key}[0]" if isinstance(value, list) and key == "rejected" else key


def mutate_row(kind: str, row: dict, base: str, rng: random.Random, earlier: dict[int, dict]):
    """`(content, Bad)`: the row as a dict (written as JSON) or raw bytes, and what it must be reported as."""
    row = copy.deepcopy(row)
    if kind == "truncated":
        text = json.dumps(row)
        return text[: rng.randrange(1, len(text) - 1)].encode(), Bad(kind, "unreadable")
    if kind == "wrong_type":
        key = rng.choice(FIELDS[base])
        if base == "multi" and key == "rejected" and rng.random() < 0.5:
            index = rng.randrange(3)
            row["rejected"][index] = rng.choice([5, True, {"t": 1}, ["x"]])
            return row, Bad(kind, "wrong_type", f"rejected[{index}]")
        row[key] = _wrong_value(rng, key) if base != "multi" or key != "rejected" else rng.choice([5, True, {"t": 1}])
        return row, Bad(kind, "wrong_type", _wrong_key(key, row[key]))
    if kind == "missing_field":
        key = rng.choice(FIELDS[base])
        del row[key]
        return row, Bad(kind, "missing_field", key)
    if kind == "empty_field":
        key = rng.choice(FIELDS[base])
        if base == "multi" and key == "rejected":
            index = rng.randrange(3)
            choice = rng.randrange(3)
            if choice == 0:
                row["rejected"] = []
                return row, Bad(kind, "empty_field", "rejected")
            row["rejected"][index] = None if choice == 1 else "  "
            return row, Bad(kind, "empty_field", f"rejected[{index}]")
        row[key] = rng.choice(["", "   ", "\n\t ", None])
        return row, Bad(kind, "empty_field", key)
    if kind == "identical":
        if base == "multi":
            row["rejected"][rng.randrange(3)] = row["chosen"]
        else:
            row["rejected"] = row["chosen"] + rng.choice(["", "  ", "\n"])
        return row, Bad(kind, "identical", "chosen")
    if kind == "duplicate":
        number = rng.choice(sorted(earlier))
        repeat = copy.deepcopy(earlier[number])
        repeat["prompt"] = rng.choice(["", " ", "\n"]) + repeat["prompt"]  # repeats compare stripped text
        return repeat, Bad(kind, "duplicate", None, duplicate_of=number)
    if kind == "bad_encoding":
        text = json.dumps(row).encode()
        inside = text.index(b'"prompt": "') + len(b'"prompt": "') + 2  # inside the prompt string
        variant = rng.choice(["latin1", "utf16_bom", "nul", "utf16"])
        if variant == "latin1":
            content = text[:inside] + b"caf\xe9" + text[inside:]
        elif variant == "nul":
            content = text[:inside] + b"\x00" + text[inside:]
        elif variant == "utf16_bom":
            content = b"\xff\xfe" + text
        else:
            content = text.decode().encode("utf-16-le")
        return content, Bad(f"{kind}:{variant}", "unreadable")
    if kind == "not_object":
        return rng.choice([b"[1, 2]", b'"a string"', b"42", b"null", b"true", b'[{"prompt": "q"}]']), Bad(
            kind, "unreadable"
        )
    if kind == "huge":
        key = rng.choice(ANSWERS[base])
        if base == "multi" and key == "rejected":
            index = rng.randrange(3)
            row["rejected"][index] = _huge_text(rng)
            return row, Bad(kind, None, f"rejected[{index}]")
        row[key] = _huge_text(rng)
        return row, Bad(kind, None, key)
    if kind == "k_mismatch":
        row["rejected"] = row["rejected"][: rng.choice([1, 2])]
        return row, Bad(kind, "invalid", "rejected")
    raise ValueError(kind)


def _classes(base: str) -> list[str]:
    classes = [k for k in JSONL_CLASSES if not (k == "identical" and base == "sft")]
    return [k for k in classes if not (k == "k_mismatch" and base != "multi")]


def make_jsonl(directory: Path, base: str, index: int) -> Case:
    """A JSONL file of the base's first rows with 0 to 4 rows mutated (classes in turn, so all are covered), and line
    noise that must change nothing but line numbers: CRLF endings, blank or whitespace-only lines, a UTF-8 BOM, no
    final newline."""
    rng = random.Random(f"jsonl:{base}:{index}:{SEED}")
    rows = _base_rows(base)
    classes = _classes(base)
    count = 0 if index % 10 == 0 else rng.randint(1, 4)
    kinds = [classes[(index * 3 + k) % len(classes)] for k in range(count)]
    positions = sorted(rng.sample(range(1, len(rows)), count))
    contents: list[bytes | dict] = list(rows)
    bads: dict[int, Bad] = {}
    for position, kind in zip(positions, kinds, strict=True):
        earlier = {i: rows[i] for i in range(position) if i not in bads}
        contents[position], bads[position] = mutate_row(kind, rows[position], base, rng, earlier)
    if index % 10 == 0 and index % 20 == 0:  # clean files, some with a huge (but fine) row
        position = rng.randrange(1, len(rows))
        contents[position], bads[position] = mutate_row("huge", rows[position], base, rng, {})
    lines = [c if isinstance(c, bytes) else json.dumps(c).encode() for c in contents]
    origin = list(range(len(lines)))  # final line index -> row index (None: a blank line)
    for _ in range(rng.choice([0, 0, 1, 3])):
        at = rng.randrange(len(lines) + 1)
        lines.insert(at, rng.choice([b"", b"   ", b"\t"]))
        origin.insert(at, None)
    ending = rng.choice([b"\n", b"\r\n"])
    data = ending.join(lines) + (ending if rng.random() < 0.8 else b"")
    if rng.random() < 0.2:
        data = b"\xef\xbb\xbf" + data
    path = directory / f"{base}-{index:03d}.jsonl"
    path.write_bytes(data)
    line_of = {row: n + 1 for n, row in enumerate(origin) if row is not None}
    expected = {}
    for row, bad in bads.items():
        if bad.duplicate_of is not None:
            bad.duplicate_of = line_of[bad.duplicate_of]
        expected[line_of[row]] = bad
    return Case(path, base, expected, sorted(line_of.values()))


def _csv_line(cells: list[str], ending: str) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator=ending).writerow(cells)
    return out.getvalue()


def make_csv(directory: Path, index: int) -> Case:
    """A CSV of the pairs with 1 to 4 rows mutated: a missing or surplus cell, a stray quote after a quoted cell (or
    a quote left open in the last row), a JSON object/list cell where a string goes, an empty cell, identical
    answers, a repeated row, a NUL byte, a 200 KB cell (fine)."""
    rng = random.Random(f"csv:{index}:{SEED}")
    rows = _base_rows("pairs")
    columns = ["prompt", "chosen", "rejected", "kind"]
    ending = rng.choice(["\n", "\r\n"])
    count = rng.randint(1, 4)
    kinds = [CSV_CLASSES[(index * 3 + k) % len(CSV_CLASSES)] for k in range(count)]
    at = dict(zip(rng.sample(range(1, len(rows) - 1), count), kinds, strict=True))
    if "bad_quote" in kinds and rng.random() < 0.3:  # a quote left open runs to the end: only in the last row
        at = {n: kind for n, kind in at.items() if kind != "bad_quote"} | {len(rows) - 1: "bad_quote"}
    bads: dict[int, Bad] = {}
    lines = [_csv_line(columns, ending)]
    for number, row in enumerate(rows):
        cells = [str(row[c]) for c in columns]
        kind = at.get(number)
        key = rng.choice(["prompt", "chosen", "rejected"])
        column = columns.index(key)
        bad = Bad(kind, "unreadable") if kind in ("cell_count", "bad_quote", "nul") else None
        if kind == "cell_count":
            cells = cells[:-1] if rng.random() < 0.5 else cells + ["extra"]
        elif kind == "bad_quote":
            quoted = '"' + cells[0].replace('"', '""')
            if number == len(rows) - 1:
                lines.append(quoted + ending)  # never closed
            else:
                lines.append(quoted + '"x,' + _csv_line(cells[1:], ending))  # text after the closing quote
            bads[number + 1] = bad
            continue
        elif kind == "wrong_type":
            value = rng.choice(['{"text": "x"}', "[1, 2]"])
            cells[column] = value
            bad = Bad(kind, "wrong_type", f"{key}[0]" if key == "rejected" and value.startswith("[") else key)
        elif kind == "empty_field":
            cells[column] = rng.choice(["", "   "])
            bad = Bad(kind, "empty_field", key)
        elif kind == "identical":
            cells[2] = cells[1]
            bad = Bad(kind, "identical", "chosen")
        elif kind == "duplicate":
            source = rng.choice([n for n in range(number) if n + 1 not in bads])
            cells = [str(rows[source][c]) for c in columns]
            bad = Bad(kind, "duplicate", duplicate_of=source + 1)
        elif kind == "nul":
            cells[column] = cells[column][:5] + "\x00" + cells[column][5:]
        elif kind == "huge":
            cells[rng.choice([1, 2])] = _huge_text(rng)
            bad = Bad(kind, None)
        if bad:
            bads[number + 1] = bad
        lines.append(_csv_line(cells, ending))
    path = directory / f"pairs-{index:03d}.csv"
    path.write_text("".join(lines), encoding="utf-8", newline="")
    return Case(path, "pairs", bads, list(range(1, len(rows) + 1)))


def make_json(directory: Path, index: int) -> Case:
    """A JSON array (or `{"data": [...]}`) of the pairs with 1 to 4 elements mutated: wrong types, missing or empty
    fields, identical answers, repeats, elements that are not objects, a 200 KB answer (fine)."""
    rng = random.Random(f"json:{index}:{SEED}")
    rows = _base_rows("pairs")
    count = rng.randint(1, 4)
    kinds = [JSON_CLASSES[(index * 3 + k) % len(JSON_CLASSES)] for k in range(count)]
    positions = sorted(rng.sample(range(1, len(rows)), count))
    elements: list = list(rows)
    bads: dict[int, Bad] = {}
    for position, kind in zip(positions, kinds, strict=True):
        if kind == "not_object":
            elements[position] = rng.choice([5, "text", [1, 2], None, True])
            bads[position + 1] = Bad(kind, "unreadable")
            continue
        earlier = {i: rows[i] for i in range(position) if i + 1 not in bads}
        elements[position], bad = mutate_row(kind, rows[position], "pairs", rng, earlier)
        if bad.duplicate_of is not None:
            bad.duplicate_of += 1
        bads[position + 1] = bad
    document = {"data": elements} if rng.random() < 0.3 else elements
    path = directory / f"pairs-{index:03d}.json"
    path.write_text(json.dumps(document, indent=rng.choice([None, 1])), encoding="utf-8")
    return Case(path, "pairs", bads, list(range(1, len(rows) + 1)))


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> list[Case]:
    directory = tmp_path_factory.mktemp("fuzz-data")
    made = [make_jsonl(directory, base, i) for base in BASES for i in range(JSONL_FILES_PER_BASE)]
    made += [make_csv(directory, i) for i in range(CSV_FILES)]
    made += [make_json(directory, i) for i in range(JSON_FILES)]
    return made


@pytest.fixture
def every_problem(monkeypatch):
    """Reports keep every problem, not the first few of each kind, so each bad row can be looked up."""
    monkeypatch.setattr(issues_module, "FIRST_N", 10**6)


def _number(problem) -> int:
    """A problem's line (JSONL) or row (`file.csv row 12`, `file.json row 12`) number."""
    if problem.line is not None:
        return problem.line
    match = re.search(r" row (\d+)$", problem.where)
    assert match, f"problem names neither a line nor a row: {problem}"
    return int(match.group(1))


def _reported(issues: RowIssues) -> dict[int, list]:
    by_number: dict[int, list] = {}
    for problems in issues.first.values():
        for problem in problems:
            by_number.setdefault(_number(problem), []).append(problem)
    return by_number


def _check_report(case: Case, report) -> list[str]:
    """Why `report` (from `lint_source`) misreports `case`, as messages."""
    wrong = []
    if report.fatal:
        return [f"fatal: {report.fatal}"]
    reported = _reported(report.issues)
    for number, problems in reported.items():
        if len(problems) != 1:
            wrong.append(f"{number}: reported {len(problems)} times: {[str(p) for p in problems]}")
    for number, bad in case.bad.items():
        problems = reported.get(number)
        if not problems:
            wrong.append(f"{number}: {bad.kind} row not reported")
            continue
        problem = problems[0]
        if problem.code != bad.code:
            wrong.append(f"{number}: {bad.kind} reported as {problem.code}, not {bad.code}: {problem}")
        elif problem.key != bad.key:
            wrong.append(f"{number}: {bad.kind} names field {problem.key!r}, not {bad.key!r}: {problem}")
        if str(case.path) not in problem.where:
            wrong.append(f"{number}: does not name the file: {problem}")
        if case.path.suffix != ".jsonl" and problem.line is not None:  # `file.csv:5` would read as a line number
            wrong.append(f"{number}: a row number printed as a line: {problem}")
        if bad.duplicate_of is not None:
            at = f"{case.path}:{bad.duplicate_of} " if case.path.suffix == ".jsonl" else f"row {bad.duplicate_of} "
            if at not in problem.message:
                wrong.append(f"{number}: repeat does not name {at!r}: {problem}")
    for number in set(reported) - set(case.bad):
        wrong.append(f"{number}: a good row reported: {reported[number][0]}")
    if report.rows_read != report.rows_ok + report.issues.total:
        wrong.append(f"rows_read {report.rows_read} != rows_ok {report.rows_ok} + problems {report.issues.total}")
    if report.rows_read != case.rows:
        wrong.append(f"rows_read {report.rows_read}, but the file holds {case.rows} rows")
    return wrong


def test_fuzz_covers_every_mutation_class_hundreds_of_files(cases):
    """If this fails, the fuzzing below no longer covers several hundred files or leaves a class of bad row out."""
    kinds = {bad.kind.split(":")[0] for case in cases for bad in case.expected.values()}
    assert len(cases) >= 400
    assert kinds >= set(JSONL_CLASSES) | set(CSV_CLASSES) | set(JSON_CLASSES)
    assert {bad.kind for case in cases for bad in case.expected.values() if bad.kind.startswith("bad_encoding")} == {
        "bad_encoding:latin1",
        "bad_encoding:utf16_bom",
        "bad_encoding:nul",
        "bad_encoding:utf16",
    }
    assert any(not case.bad for case in cases)  # clean files (line noise only) must stay clean


def test_every_bad_row_is_named_by_line_or_row_code_and_field(cases, every_problem, monkeypatch):
    """Each mutated row is reported once, by its line (JSONL) or row (CSV/JSON), under its problem code and field;
    good rows are not reported; rows read = rows kept + problems = rows in the file. If this fails, a bad row is
    dropped silently, misfiled, blamed on the wrong line or field, or a good row (CRLF, blank lines, a BOM, a 200 KB
    answer) is rejected. (Length statistics, most of the linter's time, are left to the CLI test below.)"""
    monkeypatch.setattr("align.data.lint.row_statistics", lambda rows, lengths=None: {})
    failures = []
    for case in cases:
        wrong = _check_report(case, lint_source(case.path))
        failures += [f"{case.path.name}: {message}" for message in wrong]
    assert not failures, f"{len(failures)} misreported rows:\n" + "\n".join(failures[:30])


def test_strict_loading_stops_at_the_first_bad_row_naming_it(cases):
    """Without `issues` (bad_rows: error), `load_source` raises at the first bad row of the file, naming its line or
    row and field; a file without bad rows loads whole. If this fails, training stops on a later row than the first
    bad one, or without saying which row and field."""
    failures = []
    for case in cases:
        try:
            rows = load_source(case.path)
        except AlignError as exc:
            if not case.bad:
                failures.append(f"{case.path.name}: clean file rejected: {exc}")
                continue
            first = min(case.bad)
            problem = exc.problems[0]
            if _number(problem) != first or problem.key != case.bad[first].key or problem.code != case.bad[first].code:
                failures.append(f"{case.path.name}: first bad row is {first} {case.bad[first]}, raised: {problem}")
            continue
        if case.bad:
            failures.append(f"{case.path.name}: {len(case.bad)} bad rows, but it loaded ({len(rows)} rows)")
        elif len(rows) != case.rows:
            failures.append(f"{case.path.name}: clean file gave {len(rows)} of {case.rows} rows")
    assert not failures, "\n".join(failures[:30])


def test_load_with_issues_keeps_exactly_the_good_rows(cases):
    """`bad_rows: drop`: the rows kept are the good ones, in file order, and the issues count the rest. If this
    fails, training on a partly bad file loses good rows or keeps bad ones."""
    failures = []
    for case in cases:
        issues = RowIssues()
        rows = load_source(case.path, issues=issues)
        kept = [number for number in case.numbers if number not in case.bad]
        if [row.line for row in rows] != kept or issues.total != len(case.bad):
            failures.append(f"{case.path.name}: kept {[r.line for r in rows]}, counted {issues.total}; good: {kept}")
    assert not failures, "\n".join(failures[:30])


def test_cli_inspect_exits_1_for_bad_rows_without_a_traceback(cases, capsys):
    """`align data inspect FILE` exits 1 when rows are bad (0 when none are) and prints no traceback. If this fails,
    CI cannot gate on the linter, or a bad file crashes it."""
    failures = []
    for case in cases:
        try:
            code = main(["data", "inspect", str(case.path)])
        except BaseException as exc:  # noqa: BLE001 - anything escaping main is a traceback for the user
            code = f"raised {type(exc).__name__}: {exc}"
        out, err = capsys.readouterr()
        expected = PROBLEMS if case.bad else CLEAN
        if code != expected or "Traceback" in out + err:
            failures.append(f"{case.path.name}: exit {code}, expected {expected}; {err.strip()[-300:]!r}")
    assert not failures, "\n".join(failures[:30])


def test_huge_rows_are_read_and_reported_too_long_with_a_tokenizer(cases, tiny_model_dir, every_problem):
    """A 200 KB answer is read (not dropped, not a crash) and, given a tokenizer and max_length, reported as
    `too_long` at its line or row, naming the long answer's field; nothing else changes (too-long rows are kept,
    so rows read = rows kept + problems other than too_long). If this fails, huge rows are silently truncated in
    training, or they break reading."""
    from align.models import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    limits = {}
    for base in BASES:
        fmt = "completion" if base == "sft" else "auto"
        rows = load_source(REPO / "data" / "concise" / BASES[base], fmt)[:ROWS]
        limits[base] = max(max(lengths) for _, lengths in token_lengths(rows, tokenizer))
    picked: dict[tuple, Case] = {}
    for case in cases:
        if any(bad.kind == "huge" for bad in case.expected.values()):
            picked.setdefault((case.base, case.path.suffix), case)
    assert len(picked) >= 4
    failures = []
    for case in picked.values():
        report = lint_source(case.path, tokenizer=tokenizer, max_length=limits[case.base])
        too_long = {_number(p): p for p in report.issues.first.get("too_long", [])}
        huge = {n: bad for n, bad in case.expected.items() if bad.kind == "huge"}
        if set(too_long) != set(huge):
            failures.append(f"{case.path.name}: too_long at {sorted(too_long)}, huge rows at {sorted(huge)}")
        for number, bad in huge.items():
            problem = too_long.get(number)
            if problem and case.path.suffix == ".jsonl" and problem.key != bad.key:
                failures.append(f"{case.path.name}:{number}: too_long names {problem.key!r}, not {bad.key!r}")
            if problem and case.path.suffix != ".jsonl" and problem.line is not None:
                failures.append(f"{case.path.name}: row {number} printed as a line: {problem}")
        if report.rows_read != report.rows_ok + report.issues.total - len(too_long):
            failures.append(f"{case.path.name}: rows do not add up: {report.to_dict()['rows_read']}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "name, content",
    [
        ("latin1.csv", b"prompt,chosen,rejected\nq,a,b\nq2,caf\xe9,b\n"),
        ("bom16.csv", b"\xff\xfeprompt,chosen,rejected\nq,a,b\n"),
        ("latin1.json", b'[{"prompt": "q", "chosen": "a", "rejected": "b"},\n {"prompt": "caf\xe9"}]'),
        ("truncated.json", b'[{"prompt": "q", "chosen": "a", "rejected": "b"},\n {"prompt": "q2", "chosen": '),
        ("truncated-middle.json", b'[{"prompt": "q", "chosen": "a",\n "rejected": "b"},\n {"prompt": "q2" "x"}]'),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000),
        ("bigint.json", b'[{"prompt": "q", "chosen": 1' + b"0" * 5000 + b', "rejected": "b"}]'),
    ],
)
def test_files_that_cannot_be_read_at_all_are_named(tmp_path, capsys, name, content):
    """CSV and JSON files are read whole: a bad encoding or broken JSON makes the file unreadable, reported (not a
    traceback) naming the file and, where there is one, the line; `data inspect` exits 2. If this fails, such a
    file crashes the reader or is reported without saying where."""
    path = tmp_path / name
    path.write_bytes(content)
    report = lint_source(path)
    assert report.fatal and str(path) in report.fatal and report.exit_code == UNREADABLE
    if not name.startswith(("deep", "bigint")):
        assert re.search(re.escape(str(path)) + r":\d+: ", report.fatal), report.fatal
    with pytest.raises(AlignError):
        load_source(path)
    assert main(["data", "inspect", str(path)]) == UNREADABLE
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    "line, expected",
    [
        (b'{"prompt": "q", "chosen": 1' + b"0" * 5000 + b', "rejected": "b"}', "unreadable JSON"),
        (b'{"prompt": "q", "chosen": ' + b"[" * 100_000 + b"]" * 100_000 + b', "rejected": "b"}', "unreadable JSON"),
        (b'{"prompt": "q", "chosen": "a", "chosen": "a2", "rejected": "b"}', "repeats the key 'chosen'"),
        (b'{"prompt": "q", "chosen": "a", "rejected": "b"}\r', None),
    ],
)
def test_jsonl_lines_python_cannot_build_are_bad_rows(write, line, expected):
    """JSON that parses but Python will not build (a 5000-digit number, nesting 100000 deep) was a traceback; a key
    given twice silently kept the last value. Each is now one unreadable line; a stray CR is still a good line."""
    path = write("d.jsonl", "")
    path.write_bytes(b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n' + line + b"\n")
    report = lint_source(path)
    if expected is None:
        assert report.rows_ok == 2 and not report.issues
        return
    (problem,) = report.issues.first["unreadable"]
    assert problem.line == 2 and expected in problem.message
    assert report.rows_read == 2 and report.rows_ok == 1

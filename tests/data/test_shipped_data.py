"""The shipped concise data: rebuilt deterministically from the seeds, big enough, every negative honest about what it
is (checked against the seeds, not against the generator's own bookkeeping), and split hygienically."""

import functools
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from align.data.scoring import actionability, concise_score, count_words, score_answer

REPO = Path(__file__).resolve().parents[2]
CONCISE = REPO / "data" / "concise"
KINDS = {"verbose": "easy", "vague": "medium", "incomplete": "hard"}
PAIR_FILES = ("train.jsonl", "heldout_pairs.jsonl")
# Inline list markers "1. ", "2. ", ... counted in sequence, as the generator and the scorer read them.
STEP_MARK = re.compile(r"(?:^|(?<=\s))(\d{1,2})\.[ \t]+(?=\S)")
SENTENCE_BREAK = re.compile(r"[.!?][\"')\]]*\s+(?=[A-Z`])")


@functools.cache
def _rows(name):
    return [json.loads(line) for line in (CONCISE / name).read_text(encoding="utf-8").splitlines()]


@functools.cache
def _seeds():
    """Seed items by id."""
    return {
        item["id"]: item
        for path in sorted((REPO / "data" / "seed").glob("*.jsonl"))
        for item in map(json.loads, path.read_text(encoding="utf-8").splitlines())
    }


def _pairs():
    return [(name, row) for name in PAIR_FILES for row in _rows(name)]


def _has(text, point):
    return point.lower() in text.lower()


def _steps(text):
    """(intro, [step texts]) of "intro 1. a 2. b ...", markers counted in sequence; ("text", []) if no list."""
    marks = []
    for match in STEP_MARK.finditer(text):
        if int(match.group(1)) == len(marks) + 1:
            marks.append(match)
    if len(marks) < 2:
        return text.strip(), []
    ends = [m.start() for m in marks[1:]] + [len(text)]
    return text[: marks[0].start()].strip(), [text[m.end() : e].strip() for m, e in zip(marks, ends, strict=True)]


def test_files_match_a_fresh_build_from_the_seeds():
    """If this fails, someone edited data/concise by hand or changed a seed or the generator without rebuilding."""
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_concise_data.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_at_least_1500_training_rows_with_every_kind_for_every_prompt():
    """If this fails, the training set shrank below the 1,500 preference rows the project promises, or some prompt
    lost one of the three kinds of negative (so a kind filter would silently drop prompts)."""
    train = _rows("train.jsonl")
    assert len(train) >= 1500
    kinds = Counter(row["kind"] for row in train)
    assert set(kinds) == set(KINDS) and min(kinds.values()) >= 264, kinds
    by_prompt = {}
    for row in train:
        by_prompt.setdefault(row["id"], set()).add(row["kind"])
    assert len(by_prompt) == len(_rows("sft.jsonl")) == 264
    assert all(kinds == set(KINDS) for kinds in by_prompt.values())


def test_every_pair_row_has_the_same_fields_and_its_kind_s_difficulty():
    """If this fails, a row lacks a column the recipes filter or sort on (`kind`, `difficulty`, `margin`), its
    chosen answer is not the seed's reference, or a kind carries the wrong difficulty label."""
    fields = ["prompt", "chosen", "rejected", "kind", "difficulty", "missing", "margin", "domain", "id"]
    for name, row in _pairs():
        seed = _seeds()[row["id"]]
        assert list(row) == fields, (name, row["id"])
        assert row["difficulty"] == KINDS[row["kind"]], (name, row["id"])
        assert (row["prompt"], row["chosen"], row["domain"]) == (seed["prompt"], seed["reference"], seed["domain"])
        assert (row["missing"] is None) == (row["kind"] != "incomplete"), (name, row["id"])
        assert row["rejected"] != row["chosen"], (name, row["id"])
    for name in PAIR_FILES:
        keys = [(row["id"], row["rejected"]) for row in _rows(name)]
        assert len(keys) == len(set(keys)), f"{name}: a negative is repeated for the same prompt"


def test_verbose_rows_bury_the_whole_chosen_answer_in_padding():
    """If this fails, a verbose negative lost part of the correct content (it would then teach 'drop content', not
    'drop padding') or is not much longer than the chosen answer."""
    for name, row in _pairs():
        if row["kind"] == "verbose":
            assert row["chosen"] in row["rejected"], (name, row["id"])
            assert count_words(row["rejected"]) > 2 * count_words(row["chosen"]), (name, row["id"])


def test_vague_rows_are_about_as_long_and_carry_nothing_to_act_on():
    """If this fails, a vague negative is not the same-length-but-not-actionable contrast: it differs in length by
    more than 25% (so length would explain the preference), or contains a digit, backtick or key point (so it is
    partly correct), or a templated one reads as actionable to the scorer."""
    for name, row in _pairs():
        if row["kind"] != "vague":
            continue
        seed, ratio = _seeds()[row["id"]], count_words(row["rejected"]) / count_words(row["chosen"])
        assert 0.75 <= ratio <= 1.25, (name, row["id"], ratio)
        assert not re.search(r"[0-9`]", row["rejected"]), (name, row["id"])
        assert not any(_has(row["rejected"], point) for point in seed["key_points"]), (name, row["id"])
        assert actionability(row["rejected"]) <= actionability(row["chosen"]), (name, row["id"])
        if row["rejected"] != seed["vague"]:
            assert actionability(row["rejected"]) == 0, (name, row["id"])


def test_incomplete_rows_are_shorter_and_miss_exactly_the_named_key_point():
    """If this fails, the completeness trap is broken: an incomplete negative is not shorter than the chosen answer,
    or it does not miss exactly the key point named in `missing` (it contains it, or also lacks another one)."""
    per_prompt = Counter()
    for name, row in _pairs():
        if row["kind"] != "incomplete":
            continue
        per_prompt[(name, row["id"])] += 1
        key_points = _seeds()[row["id"]]["key_points"]
        assert row["missing"] in key_points, (name, row["id"])
        assert count_words(row["rejected"]) < count_words(row["chosen"]), (name, row["id"])
        assert not _has(row["rejected"], row["missing"]), (name, row["id"])
        assert all(_has(row["rejected"], p) for p in key_points if p != row["missing"]), (name, row["id"])
    assert set(per_prompt.values()) <= {1, 2}
    generated = sum(count == 2 for count in per_prompt.values())
    assert generated >= 150, "the step-dropped incomplete negatives went missing"


def test_generated_incomplete_rows_are_the_reference_minus_one_numbered_step():
    """If this fails, an incomplete negative that is not the hand-written one was not made by dropping one whole step
    (renumbering the rest) from the reference, it misses the same point as the hand-written one, or it dropped a last
    step together with the closing sentences (often a warning) that follow it unnumbered."""
    for name, row in _pairs():
        seed = _seeds()[row["id"]]
        if row["kind"] != "incomplete" or row["rejected"] == seed["incomplete"]:
            continue
        assert row["missing"] != seed["missing"], (name, row["id"])
        intro, steps = _steps(row["chosen"])
        kept_intro, kept = _steps(row["rejected"])
        assert kept_intro == intro and len(kept) == len(steps) - 1 >= 2, (name, row["id"])
        dropped = [i for i in range(len(steps)) if steps[:i] + steps[i + 1 :] == kept]
        assert len(dropped) >= 1 and _has(steps[dropped[0]], row["missing"]), (name, row["id"])
        if dropped == [len(steps) - 1]:
            assert not SENTENCE_BREAK.search(steps[-1]), (name, row["id"])


def test_margin_is_positive_and_is_the_scorer_s_value():
    """If this fails, a `margin` (used by min_margin and easy_to_hard ordering) is not what the project's scorer says
    about the pair, or the scorer prefers the rejected answer: that pair would contradict the evaluation metric."""
    for name, row in _pairs():
        seed = _seeds()[row["id"]]

        def score(answer, row=row, seed=seed):
            scores = score_answer(row["prompt"], answer, seed["key_points"])
            return concise_score(scores, reference_words=count_words(row["chosen"]))

        assert isinstance(row["margin"], float) and row["margin"] > 0, (name, row["id"], row["margin"])
        assert row["margin"] == round(score(row["chosen"]) - score(row["rejected"]), 4), (name, row["id"])


def test_multi_negative_rows_keep_one_of_each_kind():
    """If this fails, the K = 3 files changed shape (multi-negative losses need exactly one verbose, one vague and one
    incomplete answer per row) or their negatives are not among the prompt's pair negatives."""
    for multi, pairs in (("train_multi.jsonl", "train.jsonl"), ("heldout_multi.jsonl", "heldout_pairs.jsonl")):
        negatives = {(row["id"], row["kind"], row["rejected"]) for row in _rows(pairs)}
        rows = _rows(multi)
        assert len(rows) == len({row["id"] for row in _rows(pairs)})
        for row in rows:
            assert row["rejected_kinds"] == ["verbose", "vague", "incomplete"] and len(row["rejected"]) == 3
            labelled = zip(row["rejected_kinds"], row["rejected"], strict=True)
            assert all((row["id"], k, r) in negatives for k, r in labelled)


def test_held_out_prompts_never_appear_in_training_splits():
    """If this fails, the demo's before/after numbers and held-out pair accuracy are measured on prompts (or answers)
    the model trained on, or the held-out split lost its key points or its spread over domains."""
    held = _rows("heldout_prompts.jsonl")
    prompts, ids = {row["prompt"] for row in held}, {row["id"] for row in held}
    answers = {row["reference"] for row in held}
    training = [_rows("train.jsonl"), _rows("train_multi.jsonl"), _rows("sft.jsonl")]
    assert len(held) == 48 and prompts and ids
    for rows in training:
        assert prompts.isdisjoint(row["prompt"] for row in rows)
        assert ids.isdisjoint(row["id"] for row in rows)
        assert answers.isdisjoint(row.get("chosen", row.get("completion")) for row in rows)
    for name in ("heldout_pairs.jsonl", "heldout_multi.jsonl"):
        assert {row["prompt"] for row in _rows(name)} == prompts
    for row in held:
        assert 2 <= len(row["key_points"]) <= 4 and all(_has(row["reference"], p) for p in row["key_points"])
    assert len({row["domain"] for row in held[:12]}) == 12, "the first held-out prompts should span every domain"
    first_pairs = _rows("heldout_pairs.jsonl")[:36]
    assert len({row["domain"] for row in first_pairs}) >= 6, "max_eval_rows would see only a few domains"

"""The pair builder (`align data build`): which pairs it makes from ranked answers, how it labels and balances them,
that its report accounts for every candidate pair, and that what it writes is what recipes read and filter."""

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from align.data.formats import ScoredPrompt, load_source
from align.data.pair_builder import (
    DROP_REASONS,
    BuildOptions,
    build_pairs,
    classify_kind,
    report_path,
    tertiles,
    write_pairs,
)
from align.data.rows import PreferenceRow
from align.data.scoring import concise_score, score_answer
from align.errors import AlignError
from align.selection import _keep, easy_to_hard

REPO = Path(__file__).resolve().parents[2]

EGGS = "How do I hard-boil eggs?"
KEY_POINTS = ["rolling boil", "11 minutes", "ice bath"]
# 23 words, every key point, numbered steps with numbers: the answer the builder must prefer.
GOOD = "1. Bring water to a rolling boil. 2. Boil the eggs 11 minutes. 3. Move them to an ice bath for 5 minutes."
# 59 words: every key point, buried in filler (2.6× GOOD's words).
VERBOSE = (
    "Great question! Hard-boiling eggs is easier than it looks, and I'd be happy to help. In general, bring water to a "
    "rolling boil, then boil the eggs 11 minutes. After that, keep in mind that you may want to move them to an ice "
    "bath for 5 minutes so they peel easily. I hope this helps, and good luck!"
)
# 30 words (1.3× GOOD's): no steps, numbers or key points.
VAGUE = (
    "Eggs can be tricky, and results vary with freshness and with how you cook them. Pay attention to timing and "
    "temperature, and experiment until you find what works for you."
)
# 9 words: direct, but without the ice bath.
INCOMPLETE = "Boil the eggs 11 minutes in a rolling boil."
# 60 words (2.6× GOOD's) and no key point: longer *and* missing content, which is none of the three named kinds.
OTHER = (
    "Eggs are a wonderful food with a long history. People have cooked them for thousands of years in many ways, from "
    "frying to poaching, and every culture has its own favourite method. Many cooks have strong opinions on the "
    "topic, and cookbooks disagree on almost every detail, from the pot to the salt. Just boil them until they seem "
    "done."
)


def words(tag: str, n: int = 5) -> str:
    """A distinct answer of exactly `n` whitespace words, all different (a word repeated back to back would loop)."""
    return " ".join([tag] + [f"w{i}" for i in range(1, n)])


def prompt(*answers, meta=None, labels=None, line=1, text="q") -> ScoredPrompt:
    """A ScoredPrompt from answers given as `(text, score)` (scored by the data) or plain strings (unscored)."""
    completions = [(a, {}) if isinstance(a, str) else (a[0], {"score": a[1]}) for a in answers]
    labels = labels or [{} for _ in answers]
    return ScoredPrompt(text, completions, f"in.jsonl:{line}", dict(meta or {}), "in.jsonl", labels, line)


def pairs_of(rows) -> list[tuple[str, str]]:
    """(chosen tag, rejected tag) of each row, the tag being an answer's first word."""
    return [(row["chosen"].split()[0], row["rejected"].split()[0]) for row in rows]


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def eggs_row(number: int = 0, **extra) -> dict:
    """A multi-answer row asking EGGS (numbered, so rows differ) with the four unscored eggs answers."""
    answers = [{"text": VERBOSE}, {"text": VAGUE}, {"text": GOOD}, {"text": INCOMPLETE}]
    return {"prompt": f"{EGGS} ({number})", "completions": answers, "key_points": KEY_POINTS, **extra}


def check_accounting(report) -> None:
    assert report.candidate_pairs == report.pairs_written + sum(report.dropped.values())
    assert report.prompts_read == report.prompts_with_pairs + sum(report.prompts_without_pairs.values())


# --- which pairs -----------------------------------------------------------------------------------------------------


def test_min_margin_is_inclusive_at_the_exact_boundary():
    """margin == min_margin is kept, 0.1 below is dropped, and float noise (0.3 − 0.1 = 0.1999…) does not drop a
    boundary pair: if this fails, the builder and a recipe's `min_margin` on the written margins disagree."""
    rows, report = build_pairs(
        [prompt((words("a"), 3.0), (words("b"), 2.5), (words("c"), 2.4))], BuildOptions(min_margin=0.5)
    )
    assert pairs_of(rows) == [("a", "c"), ("a", "b")]
    assert [row["margin"] for row in rows] == [0.6, 0.5]
    assert report.dropped["below_min_margin"] == 1
    rows, _ = build_pairs([prompt((words("x"), 0.3), (words("y"), 0.1))], BuildOptions(min_margin=0.2))
    assert pairs_of(rows) == [("x", "y")] and rows[0]["margin"] == 0.2


def test_tied_answers_never_make_a_pair():
    """Equal scores (also equal to 4 decimals) are no preference; pairing them would teach noise."""
    rows, report = build_pairs(
        [
            prompt((words("a"), 2.0), (words("b"), 2.0), (words("c"), 1.0)),
            prompt((words("x"), 1.00001), (words("y"), 1.0), line=2),
        ]
    )
    assert pairs_of(rows) == [("a", "c"), ("b", "c")]
    assert report.dropped["tied"] == 2
    assert report.prompts_without_pairs == {"tied": 1}


def test_identical_answers_never_make_a_pair():
    """The same text twice with different scores cannot be a pair (load_source rejects chosen == rejected)."""
    rows, report = build_pairs([prompt((words("a"), 2.0), (words("a") + " ", 1.0), (words("b"), 0.0))])
    assert pairs_of(rows) == [("a", "b"), ("a", "b")]
    assert report.dropped["identical_answers"] == 1


def test_a_pair_already_built_is_not_built_again():
    """The same prompt twice with overlapping answers: the repeated pair is dropped (load_source would refuse the
    file) and the later prompt's cap goes to its new pair instead; a K-negative row repeated is dropped whole."""
    first = prompt((words("a"), 2.0), (words("b"), 1.0))
    again = prompt((words("a"), 2.0), (words("b"), 1.0), (words("c"), 0.5), line=2)
    rows, report = build_pairs([first, again], BuildOptions(max_pairs_per_prompt=1))
    assert pairs_of(rows) == [("a", "b"), ("a", "c")]
    assert report.dropped["duplicate_pair"] == 1 and report.dropped["per_prompt_cap"] == 1
    triple = prompt((words("a"), 2.0), (words("b"), 1.0), (words("c"), 0.0))
    rows, report = build_pairs([triple, triple], BuildOptions(negatives=2))
    assert len(rows) == 1 and report.dropped["duplicate_pair"] == 2
    assert report.prompts_without_pairs == {"duplicate_pair": 1}
    check_accounting(report)


def test_per_prompt_cap_takes_the_best_answer_against_each_other_answer_first():
    """A > B > C > D, cap 3: the best against each worse answer, largest margin first (A–D, A–C, A–B), not B–D.
    With A–B below min_margin, a rejected answer is reused only when no fresh one is left (B–D third, not C–D)."""
    four = [(words("A"), 4.0), (words("B"), 3.0), (words("C"), 2.0), (words("D"), 1.0)]
    rows, report = build_pairs([prompt(*four)], BuildOptions(max_pairs_per_prompt=3))
    assert pairs_of(rows) == [("A", "D"), ("A", "C"), ("A", "B")]
    assert report.dropped["per_prompt_cap"] == 3
    close = [(words("A"), 4.0), (words("B"), 3.9), (words("C"), 2.0), (words("D"), 1.0)]
    rows, report = build_pairs([prompt(*close)], BuildOptions(min_margin=0.5, max_pairs_per_prompt=3))
    assert pairs_of(rows) == [("A", "D"), ("A", "C"), ("B", "D")]
    assert report.dropped["below_min_margin"] == 1 and report.dropped["per_prompt_cap"] == 2


def test_length_ratio_drops_pairs_of_very_different_lengths_either_way():
    """10 vs 30 words is a ratio of 3: kept at max 3, dropped at 2.9, whichever answer is the longer one."""
    shorter_wins = prompt((words("s", 10), 2.0), (words("l", 30), 1.0))
    longer_wins = prompt((words("l", 30), 2.0), (words("s", 10), 1.0), line=2)
    rows, _ = build_pairs([shorter_wins, longer_wins], BuildOptions(max_length_ratio=3))
    assert pairs_of(rows) == [("s", "l"), ("l", "s")]
    rows, report = build_pairs([shorter_wins, longer_wins], BuildOptions(max_length_ratio=2.9))
    assert rows == [] and report.dropped["length_ratio"] == 2
    assert report.prompts_without_pairs == {"length_ratio": 2}


def test_chosen_shorter_share_drops_the_lowest_margin_shorter_wins():
    """3 of 4 rows choose the shorter answer (margins 0.5, 1, 2); at most half may: the 0.5 and 1 rows go (2/4 →
    1/2), the clearest shorter win stays. Failing means a model could learn "shorter wins" from these pairs."""
    prompts = [
        prompt((words("s1", 5), 1.5), (words("l1", 10), 1.0), line=1),
        prompt((words("s2", 5), 2.0), (words("l2", 10), 1.0), line=2),
        prompt((words("s3", 5), 3.0), (words("l3", 10), 1.0), line=3),
        prompt((words("l4", 10), 1.7), (words("s4", 5), 1.0), line=4),
    ]
    rows, report = build_pairs(prompts, BuildOptions(max_chosen_shorter_share=0.5))
    assert pairs_of(rows) == [("s3", "l3"), ("l4", "s4")]
    assert report.dropped["chosen_shorter_share"] == 2
    assert report.prompts_without_pairs == {"chosen_shorter_share": 2}
    assert (report.chosen_shorter_share_before, report.chosen_shorter_share_after) == (0.75, 0.5)


def test_chosen_shorter_share_drops_later_rows_first_among_equal_margins():
    """Two shorter wins with margin 1 and one longer win, share ≤ 1/2: exactly one goes, the later one."""
    prompts = [
        prompt((words("s1"), 2.0), (words("l1", 9), 1.0)),
        prompt((words("s2"), 2.0), (words("l2", 9), 1.0)),
        prompt((words("l3", 9), 2.0), (words("s3"), 1.0)),
    ]
    rows, _ = build_pairs(prompts, BuildOptions(max_chosen_shorter_share=0.5))
    assert pairs_of(rows) == [("s1", "l1"), ("l3", "s3")]


# --- labels --------------------------------------------------------------------------------------------------------


def six_margins() -> list[ScoredPrompt]:
    """Six prompts whose one pair has margin 0.1, 0.2, ..., 0.6."""
    margins = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    return [prompt((words(f"c{i}"), m), (words(f"r{i}"), 0.0), line=i) for i, m in enumerate(margins)]


def test_difficulty_from_explicit_thresholds_includes_hi_in_easy_and_lo_in_medium():
    """(lo, hi) = (0.2, 0.5): 0.1 hard; 0.2 (= lo) medium; 0.3, 0.4 medium; 0.5 (= hi) and 0.6 easy."""
    rows, report = build_pairs(six_margins(), BuildOptions(difficulty_thresholds=(0.2, 0.5)))
    assert [row["difficulty"] for row in rows] == ["hard", "medium", "medium", "medium", "easy", "easy"]
    assert report.difficulty_thresholds == (0.2, 0.5) and report.thresholds_from == "options"


def test_difficulty_by_tertiles_of_the_written_margins():
    """Margins 0.1…0.6: quantile positions 5/3 and 10/3 give 0.2 + ⅔·0.1 = 0.2667 and 0.4 + ⅓·0.1 = 0.4333, so two
    pairs per difficulty; a wrong quantile would unbalance easy_to_hard curricula."""
    rows, report = build_pairs(six_margins())
    assert report.difficulty_thresholds == (0.2667, 0.4333) and report.thresholds_from == "tertiles"
    assert [row["difficulty"] for row in rows] == ["hard", "hard", "medium", "medium", "easy", "easy"]
    assert report.difficulties == {"easy": 2, "medium": 2, "hard": 2}
    assert tertiles([]) is None and tertiles([0.7]) == (0.7, 0.7)


def test_kind_comes_from_the_rejected_answers_own_label():
    """The data's label for the rejected answer wins over the classifier (which would call this pair "other")."""
    labels = [{"kind": "reference"}, {"kind": "verbose", "model": "m"}]
    rows, _ = build_pairs([prompt((words("a"), 2.0), (words("b"), 1.0), labels=labels)])
    assert rows[0]["kind"] == "verbose"


@pytest.mark.parametrize(
    ("rejected", "kind"), [(VERBOSE, "verbose"), (VAGUE, "vague"), (INCOMPLETE, "incomplete"), (OTHER, "other")]
)
def test_kind_is_classified_from_the_scorer_when_unlabelled(rejected, kind):
    """One hand-written answer per kind against GOOD (23 words, recall 1): VERBOSE 2.6× the words with recall 1;
    VAGUE 1.3× and less actionable; INCOMPLETE 0.4× missing a key point; OTHER 2.6× missing all of them."""
    assert classify_kind(score_answer(EGGS, GOOD, KEY_POINTS), score_answer(EGGS, rejected, KEY_POINTS)) == kind
    rows, _ = build_pairs([prompt((GOOD, 5.0), (rejected, 1.0), meta={"key_points": KEY_POINTS}, text=EGGS)])
    assert rows[0]["kind"] == kind


# --- ranking -------------------------------------------------------------------------------------------------------


def test_unscored_answers_are_ranked_by_the_concise_scorer():
    """Plain answers with key points: the concise, actionable, complete answer beats the verbose, vague and
    incomplete ones; with a cap of 3 it is the chosen answer of every pair."""
    rows, report = build_pairs(
        [prompt(VERBOSE, VAGUE, GOOD, INCOMPLETE, meta={"key_points": KEY_POINTS}, text=EGGS)],
        BuildOptions(max_pairs_per_prompt=3),
    )
    assert report.ranked_by == "concise"
    assert [row["chosen"] for row in rows] == [GOOD] * 3
    assert sorted(row["kind"] for row in rows) == ["incomplete", "vague", "verbose"]
    assert all(0 < row["margin"] <= 1 and row["chosen_score"] > row["rejected_score"] for row in rows)


def test_named_scores_rank_by_score_key_or_weights(tmp_path):
    """`score_key` and `score_weights` reach both the loader and the ranking: helpfulness prefers the long answer,
    brevity the short one, and 1·helpful + 0.5·brevity (5.5 vs 6.5) the short one by a margin of 1."""
    long, short = words("long", 40), words("short", 8)
    row = {
        "prompt": "q",
        "completions": [
            {"text": long, "scores": {"helpful": 5, "brevity": 1}},
            {"text": short, "scores": {"helpful": 4, "brevity": 5}},
        ],
    }
    source = jsonl(tmp_path / "in.jsonl", [row])
    for options, chosen, margin in [
        (BuildOptions(score_key="helpful"), long, 1.0),
        (BuildOptions(score_key="brevity"), short, 4.0),
        (BuildOptions(score_weights={"helpful": 1.0, "brevity": 0.5}), short, 1.0),
    ]:
        report = write_pairs(source, tmp_path / "out.jsonl", options)
        (written,) = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
        assert (written["chosen"], written["margin"], report.ranked_by) == (chosen, margin, "data")


def test_score_both_keeps_only_pairs_the_concise_scorer_agrees_with():
    """The data prefers VERBOSE (5) over GOOD (4): with score=both that pair is dropped as concise_disagrees, the
    two pairs against VAGUE stay; with score=data all three stay."""
    data = prompt((VERBOSE, 5.0), (GOOD, 4.0), (VAGUE, 1.0), meta={"key_points": KEY_POINTS}, text=EGGS)
    rows, report = build_pairs([data], BuildOptions(score="both"))
    assert [(row["chosen"], row["rejected"]) for row in rows] == [(VERBOSE, VAGUE), (GOOD, VAGUE)]
    assert report.dropped["concise_disagrees"] == 1 and report.ranked_by == "both"
    assert len(build_pairs([data], BuildOptions(score="data"))[0]) == 3


def test_negatives_give_one_row_with_the_best_separated_rejected_answers(tmp_path):
    """K = 2: A (4) against D (margin 3) and C (margin 2); the row's margin and kind are its hardest negative's (C);
    a prompt with fewer than K usable negatives gives no row. The rows load as K = 2 preference rows."""
    labels = [{}, {"kind": "kb"}, {"kind": "kc"}, {"kind": "kd"}]
    four = prompt((words("A"), 4.0), (words("B"), 3.0), (words("C"), 2.0), (words("D"), 1.0), labels=labels)
    rows, report = build_pairs([four, prompt((words("x"), 1.0), (words("y"), 0.0), line=2)], BuildOptions(negatives=2))
    (row,) = rows
    assert [answer.split()[0] for answer in row["rejected"]] == ["D", "C"]
    assert (row["margin"], row["kind"], row["rejected_kinds"], row["rejected_score"]) == (
        2.0,
        "kc",
        ["kd", "kc"],
        [1.0, 2.0],
    )
    assert report.dropped["too_few_negatives"] == 1 and report.dropped["per_prompt_cap"] == 4
    assert (report.pairs_written, report.rows_written) == (2, 1)
    check_accounting(report)
    path = tmp_path / "multi.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    assert load_source(path)[0].num_rejected == 2


def test_a_short_looping_answer_is_never_chosen_over_a_longer_complete_one():
    """LOOPING (24 words, every key point, numbered steps) repeats its step 2 as step 4, so it loops. Without the
    loop rule it would beat VERBOSE (59 words of filler): a shorter, actionable answer with the same recall. The
    concise score of a looping answer is 0, so VERBOSE is chosen; ranked by the data, which prefers LOOPING (5 vs
    4), the pair is dropped as chosen_loops instead of teaching the model to loop.
    If this fails, the pair builder feeds the trainer pairs whose chosen answer degenerates."""
    looping = (
        "1. Bring water to a rolling boil. 2. Boil the eggs 11 minutes. 3. Use an ice bath. "
        "4. Boil the eggs 11 minutes."
    )
    looping_scores = score_answer(EGGS, looping, KEY_POINTS)
    verbose_scores = score_answer(EGGS, VERBOSE, KEY_POINTS)
    assert looping_scores.loops and looping_scores.key_point_recall == 1.0 and not verbose_scores.loops
    assert concise_score(replace(looping_scores, loops=False)) > concise_score(verbose_scores)
    rows, _ = build_pairs([prompt(VERBOSE, looping, meta={"key_points": KEY_POINTS}, text=EGGS)])
    assert [(row["chosen"], row["rejected"]) for row in rows] == [(VERBOSE, looping)]
    data = prompt((looping, 5.0), (VERBOSE, 4.0), meta={"key_points": KEY_POINTS}, text=EGGS)
    rows, report = build_pairs([data], BuildOptions(score="data"))
    assert rows == [] and report.dropped["chosen_loops"] == 1
    assert report.prompts_without_pairs == {"chosen_loops": 1}
    check_accounting(report)


# --- report --------------------------------------------------------------------------------------------------------


def test_every_candidate_pair_is_written_or_counted_under_a_reason():
    """Ties, identical answers, small margins, length ratio, cap and balancing all at once: written + dropped ==
    candidates (n·(n−1)/2 per prompt), and every prompt read either gave rows or is counted by reason."""
    prompts = [
        prompt((words("a"), 3.0), (words("b"), 3.0), (words("c"), 1.0), (words("d", 40), 0.0), line=1),
        prompt((words("e"), 1.0), (words("e"), 0.5), line=2),
        prompt((words("f"), 1.2), (words("g"), 1.0), line=3),
        prompt((words("h", 4), 5.0), (words("i", 8), 1.0), (words("j", 9), 0.0), line=4),
    ]
    options = BuildOptions(min_margin=0.5, max_pairs_per_prompt=1, max_length_ratio=3, max_chosen_shorter_share=0.5)
    rows, report = build_pairs(prompts, options)
    assert report.candidate_pairs == 6 + 1 + 1 + 3
    check_accounting(report)
    assert set(report.dropped) == set(DROP_REASONS)
    assert report.rows_written == len(rows) == report.pairs_written
    assert sum(report.kinds.values()) == sum(report.difficulties.values()) == len(rows)
    text = report.to_text()
    assert f"candidate pairs {report.candidate_pairs}" in text and len(text.splitlines()) <= 6


def test_input_columns_follow_ours_and_never_overwrite_them():
    """The row's own `id`, `key_points`... are kept after our columns; an input `kind` or `source` column is
    replaced by ours and counted, never silently."""
    meta = {"id": "eggs-1", "kind": "theirs", "source": "hub", "key_points": KEY_POINTS}
    rows, report = build_pairs([prompt((GOOD, 2.0), (VAGUE, 1.0), meta=meta, text=EGGS)])
    ours = [
        "prompt",
        "chosen",
        "rejected",
        "margin",
        "difficulty",
        "kind",
        "chosen_score",
        "rejected_score",
        "chosen_words",
        "rejected_words",
        "source",
    ]
    assert list(rows[0]) == [*ours, "id", "key_points"]
    assert (rows[0]["kind"], rows[0]["source"], rows[0]["id"]) == ("vague", "in.jsonl:1", "eggs-1")
    assert report.columns_shadowed == {"kind": 1, "source": 1}


# --- files ---------------------------------------------------------------------------------------------------------


def test_written_pairs_load_as_preference_rows_that_recipes_filter_and_order(tmp_path):
    """The output is standard preference data whose meta has kind, difficulty and margin, so the recipe filters
    (`kinds`, `difficulties`, `min_margin`) and `easy_to_hard` work on it; the report JSON sits next to it."""
    source = jsonl(tmp_path / "in.jsonl", [eggs_row(i, id=f"e{i}") for i in range(3)])
    report = write_pairs(source, tmp_path / "out" / "pairs.jsonl")
    rows = load_source(tmp_path / "out" / "pairs.jsonl")
    assert len(rows) == report.rows_written == 18 and all(isinstance(row, PreferenceRow) for row in rows)
    assert {"kind", "difficulty", "margin", "id", "key_points"} <= set(rows[0].meta)
    data = SimpleNamespace(kinds=["vague", "verbose"], difficulties=["easy", "medium"], min_margin=0.1)
    kept, removed = _keep(rows, data)
    assert kept and all(r.meta["kind"] in data.kinds and r.meta["margin"] >= 0.1 for r in kept)
    assert len(kept) + sum(removed.values()) == len(rows)
    assert [r.meta["difficulty"] for r in easy_to_hard(rows)][0] == "easy"
    saved = json.loads(report_path(tmp_path / "out" / "pairs.jsonl").read_text(encoding="utf-8"))
    assert saved == report.to_dict() and saved["output"].endswith("pairs.jsonl")


def test_building_twice_gives_byte_identical_files(tmp_path):
    """Same input and options → the same bytes, so a rebuilt data set never shows a spurious diff."""
    source = jsonl(tmp_path / "in.jsonl", [eggs_row(1, id="a"), eggs_row(2, id="b", key_points=["ice bath"])])
    options = BuildOptions(max_pairs_per_prompt=2, max_chosen_shorter_share=0.5)
    write_pairs(source, tmp_path / "one.jsonl", options)
    write_pairs(source, tmp_path / "two.jsonl", options)
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()


def test_seed_items_always_choose_the_reference_answer(tmp_path):
    """End to end on four shipped seed items made multi-answer (vague, incomplete, reference, unscored): the
    concise scorer must pick the hand-written reference every time, against both worse answers."""
    seeds = [
        json.loads((REPO / "data" / "seed" / f"{d}.jsonl").read_text().splitlines()[0])
        for d in ("cooking", "git", "finance", "sql")
    ]
    rows = [
        {
            "id": s["id"],
            "domain": s["domain"],
            "prompt": s["prompt"],
            "key_points": s["key_points"],
            "completions": [s["vague"], s["incomplete"], s["reference"]],
        }
        for s in seeds
    ]
    report = write_pairs(
        jsonl(tmp_path / "seeds.jsonl", rows), tmp_path / "pairs.jsonl", BuildOptions(max_pairs_per_prompt=2)
    )
    pairs = load_source(tmp_path / "pairs.jsonl")
    reference = {s["id"]: s["reference"] for s in seeds}
    assert len(pairs) == 8 and all(row.chosen == reference[row.meta["id"]] for row in pairs)
    assert report.kinds == {"incomplete": 4, "vague": 4}
    check_accounting(report)


# --- errors --------------------------------------------------------------------------------------------------------


def test_pairs_input_is_refused_with_a_reason(tmp_path):
    source = jsonl(tmp_path / "in.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}])
    with pytest.raises(AlignError, match="already holds preference pairs"):
        write_pairs(source, tmp_path / "out.jsonl")


def test_output_may_not_overwrite_the_input_or_be_other_than_jsonl(tmp_path):
    source = jsonl(tmp_path / "in.jsonl", [eggs_row()])
    with pytest.raises(AlignError, match="would overwrite the input"):
        write_pairs(source, tmp_path / "." / "in.jsonl")
    with pytest.raises(AlignError, match="ending in .jsonl"):
        write_pairs(source, tmp_path / "out.json")
    assert source.read_text(encoding="utf-8") == json.dumps(eggs_row()) + "\n"


def test_bad_rows_are_named_by_file_line_and_field(tmp_path):
    """Mixing scored and unscored rows (margins in two units) and malformed key_points or kind labels are user
    errors naming file:line and the field, never a traceback."""
    scored = {"prompt": "q", "completions": [{"text": "a", "score": 1}, {"text": "b", "score": 0}]}
    cases = [
        ([scored, {"prompt": "q", "completions": ["a", "b"]}], r"in.jsonl:2: completions: has unscored answers"),
        ([eggs_row(key_points="ice bath")], r"in.jsonl:1: key_points: must be a list"),
        ([{"prompt": "q", "completions": ["a", {"text": "b", "kind": 3}]}], r"in.jsonl:1: completions\[1\].kind"),
    ]
    for rows, message in cases:
        with pytest.raises(AlignError, match=message):
            write_pairs(jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_no_surviving_pair_writes_nothing_and_says_why(tmp_path):
    tied = [{"text": "a", "score": 1}, {"text": "b", "score": 1}]
    source = jsonl(tmp_path / "in.jsonl", [{"prompt": "q", "completions": tied}])
    with pytest.raises(AlignError, match=r"no pairs to write from 1 candidate pairs \(dropped: tied 1\)"):
        write_pairs(source, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists() and not report_path(tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(min_margin=-0.1), r"--min-margin: must be a number ≥ 0"),
        (dict(max_pairs_per_prompt=0), r"--max-pairs-per-prompt: must be a whole number ≥ 1"),
        (dict(max_length_ratio=0.5), r"--max-length-ratio: must be a number ≥ 1"),
        (dict(max_chosen_shorter_share=1.5), r"--max-chosen-shorter-share: must be a share from 0 to 1"),
        (dict(difficulty_thresholds=(0.5, 0.2)), r"--difficulty-thresholds: must be two numbers lo ≤ hi"),
        (dict(negatives=2, max_pairs_per_prompt=2), r"--max-pairs-per-prompt: applies to pairs"),
        (dict(score="judge"), r"--score: must be data, concise or both"),
    ],
)
def test_bad_options_name_the_flag(options, message):
    with pytest.raises(AlignError, match=message):
        BuildOptions(**options)


def test_cli_build_writes_pairs_and_reports_drops(tmp_path, capsys):
    """`align data build` end to end: flags reach the builder, the output reloads as preference rows, a malformed
    flag is a one-line error with exit 2. If this fails the command users run differs from the tested function."""
    from align.cli import main

    rows = [
        {
            "prompt": f"q{i}",
            "key_points": ["11 minutes"],
            "completions": [
                {"text": "1. Boil water. 2. Cook the eggs 11 minutes. 3. Cool them in ice water.", "kind": "good"},
                {"text": "Great question! It depends on many things, and everyone is different.", "kind": "vague"},
                {"text": "Boil the eggs.", "kind": "incomplete"},
            ],
        }
        for i in range(3)
    ]
    source = tmp_path / "multi.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n", encoding="utf-8")
    out = tmp_path / "pairs.jsonl"
    assert main(["data", "build", str(source), "-o", str(out), "--max-pairs-per-prompt", "1"]) == 2
    assert "multi.jsonl:4: broken JSON" in capsys.readouterr().err
    code = main(["data", "build", str(source), "-o", str(out), "--max-pairs-per-prompt", "1", "--drop-bad-rows"])
    assert code == 0
    text = capsys.readouterr().out
    assert "3 rows (3 pairs) from 3 prompts" in text and "bad input rows dropped: unreadable 1" in text
    pairs = load_source(out)
    assert len(pairs) == 3 and all(p.chosen.startswith("1. Boil") for p in pairs)
    assert {p.meta["kind"] for p in pairs} <= {"vague", "incomplete"} and all(p.meta["margin"] > 0 for p in pairs)
    assert main(["data", "build", str(source), "-o", str(out), "--score-weight", "x"]) == 2
    assert "--score-weight: 'x': give NAME=VALUE (a number)" in capsys.readouterr().err


def test_the_quality_bar_keeps_weak_and_cut_answers_from_being_chosen():
    """The bar (`min_chosen_score`, concise units): GOOD (all key points, steps) clears 0.7, VAGUE does not, so of
    GOOD > VAGUE > OTHER only GOOD's pairs are written and VAGUE–OTHER is dropped as chosen_below_bar. A GOOD
    answer labelled `truncated` (cut at the length cap by generation) is never chosen either, whatever its score.
    If this fails, on-policy pairs teach the model to imitate weak or unfinished answers."""
    meta = {"key_points": KEY_POINTS}
    scores = [concise_score(score_answer(EGGS, text, KEY_POINTS)) for text in (GOOD, VAGUE, OTHER)]
    assert scores[0] >= 0.7 > scores[1] > scores[2], scores
    options = BuildOptions(score="concise", min_chosen_score=0.7)
    rows, report = build_pairs([prompt(GOOD, VAGUE, OTHER, meta=meta, text=EGGS)], options)
    assert [(row["chosen"], row["rejected"]) for row in rows] == [(GOOD, OTHER), (GOOD, VAGUE)]
    assert report.dropped["chosen_below_bar"] == 1
    check_accounting(report)
    labels = [{"truncated": True}, {}]
    rows, report = build_pairs(
        [prompt(GOOD, VAGUE, meta=meta, labels=labels, text=EGGS)], BuildOptions(score="concise")
    )
    assert rows == [] and report.prompts_without_pairs == {"chosen_below_bar": 1}
    with pytest.raises(AlignError, match="min-chosen-score"):
        BuildOptions(min_chosen_score=1.5)

#!/usr/bin/env python3
"""Build the shipped concise-vs-verbose preference data from the hand-written seed items in data/seed/.

Each seed item has a prompt, a concise actionable reference answer, its key points, a `vague` answer (same length,
not actionable) and an `incomplete` answer (shorter, missing one key point, named in `missing`). This script adds
generated negatives, holds out prompts for evaluation, and writes:

    data/concise/train.jsonl            preference rows: prompt, chosen, rejected, kind, difficulty, missing, margin,
                                        domain, id
    data/concise/train_multi.jsonl      one row per training prompt, `rejected` = [verbose, vague, incomplete] (K = 3)
    data/concise/sft.jsonl              prompt → reference, for SFT warm-up stages
    data/concise/train_prompts.jsonl    the training prompts with key points and reference answers, for on-policy stages
    data/concise/heldout_prompts.jsonl  prompts with key points and reference answers, never trained on
    data/concise/heldout_pairs.jsonl    preference rows for the held-out prompts (same construction as train.jsonl),
                                        grouped by prompt in heldout_prompts' round-robin order over domains
    data/concise/heldout_multi.jsonl    K = 3 rows for the held-out prompts

Negatives per prompt (6 when every construction is valid):
  - 3 × verbose: the reference verbatim, buried in templated preamble, restatement, filler, hedges and a repeated
    summary (three seeded template draws; the third uses a different layout and its own recap/intro templates);
  - 1 × vague: the hand-written one;
  - 1 × incomplete: the hand-written one;
  - 1 more: an incomplete answer made by dropping, from a reference written as numbered steps "1. ... 2. ...", the one
    step that holds a key point other than the hand-written `missing` one (the rest renumbered), when that is valid;
    otherwise a templated vague answer built from domain-generic, non-actionable sentences.
Every construction is checked in code (lengths, key points literally present/absent, no digits or backticks in vague
answers) and every row needs a positive `margin` = concise_score(chosen) − concise_score(rejected) (the project's
scorer, `align.data.scoring`); a negative failing a check is not written, and the summary printed at the end says why.
`missing` names the key point an incomplete answer leaves out (null for the other kinds).

Deterministic: the same seeds give byte-identical files. Usage: python scripts/build_concise_data.py [--check]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so the script also runs without the package installed (scoring is stdlib-only)

from align.data.scoring import concise_score, count_words, key_point_recall, score_answer  # noqa: E402

SEED_DIR = ROOT / "data" / "seed"
OUT_DIR = ROOT / "data" / "concise"
HELDOUT_PER_DOMAIN = 4
DIFFICULTY = {"verbose": "easy", "vague": "medium", "incomplete": "hard"}
#: Templated vague answers aim at the reference's word count, within ±VAGUE_TOLERANCE (the seeds allow ±25%).
VAGUE_TOLERANCE = 0.2

OPENERS = [
    "Great question!",
    "Thanks for asking, this is something a lot of people wonder about.",
    "Sure, I'd be happy to help you with that.",
    "Absolutely, let's go through this together.",
    "That's a really good thing to ask about, and I'm glad you did.",
    "Of course! This comes up quite often.",
    "Happy to help!",
    "What a great topic to explore.",
]
RESTATEMENTS = [
    'So, if I understand correctly, you are asking: "{prompt}"',
    'You want to know the answer to this question: "{prompt}"',
    'Let me make sure I have this right. Your question is: "{prompt}"',
    'To restate the question: "{prompt}"',
]
FILLERS = [
    "Before we get into it, it's worth noting that there are many different approaches, and the best one can depend "
    "on your specific situation, your preferences and a number of other factors.",
    "It's important to keep in mind that everyone's circumstances are a little different, so what works perfectly "
    "for one person might not be ideal for another.",
    "There are quite a few things to consider here, and it can be helpful to think about the bigger picture before "
    "diving into the details.",
    "This is actually a topic with a surprising amount of nuance, and people have many different opinions about it.",
]
HEDGES = [
    "Generally speaking, and depending on your situation, here is what I would suggest.",
    "In most cases, although there may be exceptions, the following approach tends to work reasonably well.",
    "While I can't be completely certain about your exact setup, this is what usually works.",
    "I would probably recommend something along these lines, though you may want to adjust it.",
]
DISCLAIMERS = [
    "Of course, results can vary, so you may need to experiment a little to find what works best for you.",
    "Please keep in mind that this is general information, and your own circumstances might call for something "
    "slightly different.",
    "That said, it never hurts to double-check and to consult additional resources if you are unsure.",
]
CLOSERS = [
    "I hope this helps! Let me know if you have any other questions.",
    "Feel free to reach out if you need any more help with this. Good luck!",
    "I hope that answers your question. Don't hesitate to ask if anything is unclear!",
    "Hopefully that gives you a good starting point. Happy to help further if needed!",
]
# Used only by the third verbose variant, so it is not the first two with a different draw.
BACKGROUNDS = [
    "This is one of those things that seems simple at first but actually has a few moving parts.",
    "A lot of people run into exactly this, so you are definitely not alone in wondering about it.",
    "Before jumping in, it helps to understand why this matters in the first place, because the context shapes "
    "everything that follows.",
]
INTROS = [
    "With all of that in mind, here's how I would approach it:",
    "So, without further ado, this is the approach I'd recommend:",
    "Okay, so here is what you can do:",
]
RECAPS = [
    "In summary, the key things to keep in mind are: {points}.",
    "Just to recap once more, the points that matter most here are: {points}.",
    "So, in short, remember these: {points}.",
]

# Templated vague answers: sentences that are about the domain but give the reader nothing to act on (no imperative
# verbs, digits, commands or steps). The key points of the item are checked to be absent.
VAGUE_DOMAIN = {
    "shell": [
        "The command line offers several ways to handle this, and each tool has its own strengths and quirks.",
        "Linux systems differ a little between distributions, so what you see on your machine may not match "
        "every guide.",
        "Shell work rewards caution, because a small typo can have larger effects than expected.",
        "Experienced administrators tend to build up their own habits and preferred tools for this kind of job.",
        "The manual pages cover the relevant options in much more depth than most people ever need.",
    ],
    "python": [
        "Python usually offers more than one reasonable way to do this, and people have debated the trade-offs "
        "for years.",
        "The standard library and the wider package ecosystem both have something to say about this problem.",
        "Readability matters a lot in Python, so the clearest approach is often the one people settle on.",
        "Different versions of the language and its tooling have handled this in slightly different ways.",
        "Code that works in a quick script may need more care once it becomes part of a larger project.",
    ],
    "git": [
        "Git is flexible, and the same result can often be reached through several different routes.",
        "Version control history is valuable, so it makes sense to be careful whenever it is being changed.",
        "Teams often have their own conventions for this, and those conventions matter as much as the tool itself.",
        "The terminology can be confusing at first, and many developers only feel comfortable after some practice.",
        "Whether anyone else shares the repository makes a real difference to which approach is appropriate.",
    ],
    "sql": [
        "Databases vary in their dialects and features, so the details depend on the system in question.",
        "Working with data always involves some risk, especially when the tables matter to other people.",
        "Performance and correctness can both be affected by how the data is structured.",
        "The language is expressive enough that quite different queries can produce the same result.",
        "Production data deserves more care than a test database, and it is worth knowing which one is in play.",
    ],
    "cooking": [
        "Cooking is partly science and partly personal taste, so results differ from one kitchen to the next.",
        "Ingredients, equipment and even the weather can all influence how a dish turns out.",
        "Many cooks develop their own approach to this over years of trial and error.",
        "Recipes often disagree on the details, which shows how much room there is for preference.",
        "Food safety matters as well, so a little care in the kitchen is always sensible.",
    ],
    "finance": [
        "Personal finance is personal, and the right decision depends heavily on income, goals and obligations.",
        "Money decisions often involve trade-offs between security now and flexibility later.",
        "Rules, fees and products vary between countries and providers, so general advice only goes so far.",
        "Many people find that understanding their own habits is the hardest part of managing money.",
        "A professional adviser may be able to look at the whole picture in a way general guidance cannot.",
    ],
    "travel": [
        "Travel plans involve many moving parts, and what suits one trip may not suit the next.",
        "Airlines, hotels and destinations all have their own policies, and these change from time to time.",
        "Experienced travellers tend to develop routines that make the whole process feel smoother.",
        "Budget, comfort and convenience often pull in different directions when planning a trip.",
        "A bit of flexibility usually makes travel less stressful when things do not go as expected.",
    ],
    "home_repair": [
        "Home repairs range from simple to surprisingly tricky, and it is not always obvious which kind this is.",
        "Every house is built a little differently, so what works in one home may not apply to another.",
        "Some jobs suit a confident amateur, while others are better left to a professional.",
        "Tools, materials and local building rules can all affect how a repair should be approached.",
        "Safety is an important consideration with any work around the house.",
    ],
    "writing": [
        "Good writing depends a great deal on the audience and on what the reader already knows.",
        "Tone is hard to get right, and the same message can land very differently with different people.",
        "Many writers find that the first draft is rarely the best version of what they want to say.",
        "Workplace norms around communication vary between companies, industries and cultures.",
        "Clarity and courtesy usually go a long way, whatever the exact situation.",
    ],
    "study": [
        "Everyone learns a little differently, and habits that work for one person may not suit another.",
        "Research on learning offers useful ideas, although applying them takes some trial and error.",
        "Motivation and energy levels change over a term, which affects how well any approach works.",
        "The subject itself matters too, since some material calls for understanding and some for memorisation.",
        "Good study habits develop gradually rather than overnight.",
    ],
    "fitness": [
        "Fitness is very individual, and progress depends on the starting point, the goals and recovery.",
        "Bodies respond differently to training, so what works well for one person may not work for another.",
        "Consistency over time generally matters more than any single workout or routine.",
        "Health conditions and past injuries can change what is appropriate, which is worth bearing in mind.",
        "Many people find that enjoyment is what keeps them coming back to exercise in the long run.",
    ],
    "office": [
        "Office software has many features, and there is often more than one way to reach the same result.",
        "Different versions of the software can behave slightly differently, which makes guides confusing.",
        "Spreadsheets and documents tend to grow more complicated over time, so structure matters.",
        "Colleagues may have their own conventions, and fitting in with them can matter as much as the method.",
        "Many people only learn the more advanced features when a particular problem forces them to.",
    ],
}
VAGUE_GENERIC = [
    "This is a common situation, and there is rarely a single answer that suits everyone.",
    "A lot depends on the details of the situation and on what you are hoping to achieve.",
    "Many people run into this at some point, and most find their way through it eventually.",
    "The right choice usually comes down to balancing convenience, cost and the time available.",
    "It can help to think about the bigger picture and about what matters most to you.",
    "Small details can make a surprising difference, so a careful approach tends to pay off.",
    "What feels awkward at first often becomes routine with a little experience.",
    "Opinions differ on the best approach, and several reasonable options exist.",
    "Being thoughtful and consistent is usually more valuable than finding a perfect method.",
    "Some trade-offs only become clear once you are further along.",
]

# Inline list markers "1. ", "2. ", ... in sequence (a number not next in the sequence is ordinary text).
_STEP_MARK_RE = re.compile(r"(?:^|(?<=\s))(\d{1,2})\.[ \t]+(?=\S)")
# A sentence break inside a step: . ! or ? (plus closing quotes/brackets), a space, then a capital or a backtick.
_SENTENCE_BREAK_RE = re.compile(r"[.!?][\"')\]]*\s+(?=[A-Z`])")


def _joined(key_points: list[str]) -> str:
    points = [p.rstrip(".") for p in key_points]
    return points[0] if len(points) == 1 else ", ".join(points[:-1]) + " and " + points[-1]


def summary_sentence(key_points: list[str]) -> str:
    return f"To sum up, the most important things to remember are: {_joined(key_points)}."


def verbose_answer(item: dict, variant: int) -> str:
    """The reference's full content, padded the way chatty assistants pad it (deterministic per item/variant).

    Variants 0 and 1: opener, restatement, filler, hedge, reference, (variant 1: disclaimer), summary, sign-off.
    Variant 2, another layout: opener, background, restatement, intro line, reference, recap, disclaimer, sign-off.
    """
    rng = random.Random(f"{item['id']}/verbose/{variant}")
    opener = rng.choice(OPENERS)
    if variant == 2:
        background = rng.choice(BACKGROUNDS)
        parts = [opener, background, rng.choice(RESTATEMENTS).format(prompt=item["prompt"].strip())]
        parts += [rng.choice(INTROS), item["reference"].strip()]
        parts += [rng.choice(RECAPS).format(points=_joined(item["key_points"])), rng.choice(DISCLAIMERS)]
        return " ".join(parts + [rng.choice(CLOSERS)])
    parts = [opener, rng.choice(RESTATEMENTS).format(prompt=item["prompt"].strip())]
    parts += [rng.choice(FILLERS), rng.choice(HEDGES), item["reference"].strip()]
    if variant % 2:
        parts.append(rng.choice(DISCLAIMERS))
    parts += [summary_sentence(item["key_points"]), rng.choice(CLOSERS)]
    return " ".join(parts)


def has_point(text: str, point: str) -> bool:
    """A key point is present when its phrase occurs literally (case-insensitive), as the seeds are checked."""
    return point.lower() in text.lower()


def numbered_steps(text: str) -> tuple[str, list[str]] | None:
    """(intro, steps) of a reference written as inline numbered steps "intro 1. ... 2. ...", or None.

    A step runs to the next marker; the last one runs to the end (any closing sentence belongs to it). None unless
    there are at least two steps and intro + renumbered steps rebuild the text exactly.
    """
    marks: list[re.Match] = []
    for match in _STEP_MARK_RE.finditer(text):
        if int(match.group(1)) == len(marks) + 1:
            marks.append(match)
    if len(marks) < 2:
        return None
    intro = text[: marks[0].start()].strip()
    ends = [m.start() for m in marks[1:]] + [len(text)]
    steps = [text[m.end() : end].strip() for m, end in zip(marks, ends, strict=True)]
    return (intro, steps) if join_steps(intro, steps) == text.strip() else None


def join_steps(intro: str, steps: list[str]) -> str:
    return " ".join(([intro] if intro else []) + [f"{i}. {step}" for i, step in enumerate(steps, 1)])


def step_dropped_incomplete(item: dict) -> tuple[dict | None, str | None]:
    """({"rejected", "missing"}, None), or (None, why not): the reference minus the one numbered step that holds a
    key point other than the hand-written `missing` one, the remaining steps renumbered.

    Valid only if that step holds no other key point, is not a last step followed by closing sentences (where the
    step ends is unclear), at least two steps remain, the result misses that point
    literally and still contains every other one, and the scorer's lenient matching agrees on what is missing.
    Among several valid points, one is drawn (seeded per item).
    """
    parsed = numbered_steps(item["reference"])
    if parsed is None:
        return None, "reference is not written as numbered steps"
    intro, steps = parsed
    if len(steps) < 3:
        return None, "reference has only 2 steps (dropping one would leave a one-item list)"
    candidates, reasons = [], Counter()
    for point in item["key_points"]:
        if point == item["missing"]:
            continue
        holding = [i for i, step in enumerate(steps) if has_point(step, point)]
        if len(holding) != 1:
            reasons["key point is not inside exactly one step"] += 1
            continue
        step = steps[holding[0]]
        others = [p for p in item["key_points"] if p != point]
        if any(has_point(step, p) for p in others):
            reasons["the key point's step also holds another key point"] += 1
            continue
        if holding[0] == len(steps) - 1 and _SENTENCE_BREAK_RE.search(step):
            # Closing remarks (often a warning) follow the last step with no marker: dropping "the step" would drop
            # them too, so this point is not used.
            reasons["the key point is in the last step, which runs on into closing sentences"] += 1
            continue
        text = join_steps(intro, steps[: holding[0]] + steps[holding[0] + 1 :])
        if has_point(text, point) or not all(has_point(text, p) for p in others):
            reasons["dropping the step does not remove exactly that key point"] += 1
            continue
        if key_point_recall(text, [point]) > 0 or key_point_recall(text, others) < 1:
            reasons["the scorer still finds the dropped key point (lenient match)"] += 1
            continue
        if count_words(text) >= count_words(item["reference"]):
            reasons["not shorter than the reference"] += 1  # cannot happen, but it is the kind's invariant
            continue
        candidates.append({"rejected": text, "missing": point})
    if not candidates:
        return None, " / ".join(sorted(reasons)) if reasons else "no key point other than `missing`"
    return random.Random(f"{item['id']}/incomplete").choice(candidates), None


def templated_vague(item: dict) -> tuple[str | None, str | None]:
    """(answer, None) or (None, why not): domain-generic, non-actionable sentences, about as long as the reference
    (±VAGUE_TOLERANCE words), with no digits, backticks or key points (not even by the scorer's lenient match)."""
    target = count_words(item["reference"])
    low, high = (1 - VAGUE_TOLERANCE) * target, (1 + VAGUE_TOLERANCE) * target
    rng = random.Random(f"{item['id']}/vague/1")
    domain, generic = list(VAGUE_DOMAIN[item["domain"]]), list(VAGUE_GENERIC)
    rng.shuffle(domain)
    rng.shuffle(generic)
    paired = [s for two in zip(domain, generic, strict=False) for s in two]
    pool = paired + domain[len(generic) :] + generic[len(domain) :]
    chosen: list[str] = []
    for sentence in pool:
        words = count_words(" ".join(chosen))
        if words >= low:
            break
        if words + count_words(sentence) <= high:
            chosen.append(sentence)
    text = " ".join(chosen)
    if not low <= count_words(text) <= high:
        return None, "no sentence combination within the length band"
    if re.search(r"[0-9`]", text) or any(has_point(text, p) for p in item["key_points"]):
        return None, "contains a digit, backtick or key point"
    if key_point_recall(text, item["key_points"]) > 0:
        return None, "the scorer finds a key point in it (lenient match)"
    return text, None


def margin(item: dict, rejected: str) -> float:
    """concise_score(chosen) − concise_score(rejected), both scored against the prompt and key points with the
    reference's word count as the length budget, rounded to 4 decimals."""
    budget = count_words(item["reference"])

    def score(answer: str) -> float:
        return concise_score(score_answer(item["prompt"], answer, item["key_points"]), reference_words=budget)

    return round(score(item["reference"]) - score(rejected), 4)


def pair(item: dict, rejected: str, kind: str, missing: str | None = None) -> dict:
    return {
        "prompt": item["prompt"],
        "chosen": item["reference"],
        "rejected": rejected,
        "kind": kind,
        "difficulty": DIFFICULTY[kind],
        "missing": missing,
        "margin": margin(item, rejected),
        "domain": item["domain"],
        "id": item["id"],
    }


def pairs_for(item: dict, report: dict[str, list[str]]) -> list[dict]:
    """Every valid negative for one item; `report` maps each construction made or skipped (with why) to item ids."""
    rows = [pair(item, verbose_answer(item, v), "verbose") for v in range(3)]
    rows += [pair(item, item["vague"], "vague"), pair(item, item["incomplete"], "incomplete", item["missing"])]
    extra, why = step_dropped_incomplete(item)
    if extra is not None:
        rows.append(pair(item, extra["rejected"], "incomplete", extra["missing"]))
        report.setdefault("made: step-dropped incomplete", []).append(item["id"])
    else:
        report.setdefault(f"no step-dropped incomplete: {why}", []).append(item["id"])
        vague, why = templated_vague(item)
        if vague is not None:
            rows.append(pair(item, vague, "vague"))
            report.setdefault("made: templated vague (no step-dropped incomplete)", []).append(item["id"])
        else:
            report.setdefault(f"no templated vague either: {why}", []).append(item["id"])
    assert len({row["rejected"] for row in rows}) == len(rows), f"{item['id']}: two negatives are identical"
    for row in rows:
        if row["margin"] <= 0:
            report.setdefault(f"skipped, margin not positive: {row['kind']}", []).append(item["id"])
    return [row for row in rows if row["margin"] > 0]


def multi_negative_row(item: dict) -> dict:
    """One chosen against K = 3 rejected answers, one of each kind, for multi-negative losses (nca, infonca)."""
    return {
        "prompt": item["prompt"],
        "chosen": item["reference"],
        "rejected": [verbose_answer(item, 0), item["vague"], item["incomplete"]],
        "rejected_kinds": ["verbose", "vague", "incomplete"],
        "domain": item["domain"],
        "id": item["id"],
    }


def load_seeds() -> dict[str, list[dict]]:
    by_domain: dict[str, list[dict]] = {}
    for path in sorted(SEED_DIR.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                by_domain.setdefault(item["domain"], []).append(item)
    return by_domain


def build() -> tuple[dict[str, list[dict]], dict[str, dict[str, list[str]]]]:
    """(file name → rows, split → counts of constructions made and skipped)."""
    files: dict[str, list[dict]] = {
        "train": [],
        "train_multi": [],
        "sft": [],
        "train_prompts": [],
        "heldout_prompts": [],
        "heldout_pairs": [],
        "heldout_multi": [],
    }
    report: dict[str, dict[str, list[str]]] = {"train": {}, "heldout": {}}
    held_pairs: dict[str, list[dict]] = {}
    for domain, items in sorted(load_seeds().items()):
        held_ids = {it["id"] for it in random.Random(f"heldout/{domain}").sample(items, HELDOUT_PER_DOMAIN)}
        for item in items:
            if item["id"] in held_ids:
                files["heldout_prompts"].append(
                    {k: item[k] for k in ("id", "domain", "prompt", "key_points", "reference")}
                )
                held_pairs[item["id"]] = pairs_for(item, report["heldout"])
                files["heldout_multi"].append(multi_negative_row(item))
            else:
                files["train"].extend(pairs_for(item, report["train"]))
                files["train_multi"].append(multi_negative_row(item))
                files["sft"].append({"prompt": item["prompt"], "completion": item["reference"], "id": item["id"]})
                files["train_prompts"].append(
                    {k: item[k] for k in ("id", "domain", "prompt", "key_points", "reference")}
                )
    random.Random("train-order").shuffle(files["train"])
    random.Random("train-multi-order").shuffle(files["train_multi"])
    # Round-robin over domains, so the first N held-out prompts (`align eval --limit N`) span many domains; the
    # held-out pairs follow the same prompt order, so `max_eval_rows` also spans domains rather than the first two.
    files["heldout_prompts"] = round_robin(files["heldout_prompts"])
    # The on-policy stage samples the first N training prompts: round-robin so they span every domain too.
    files["train_prompts"] = round_robin(files["train_prompts"])
    files["heldout_pairs"] = [row for prompt in files["heldout_prompts"] for row in held_pairs[prompt["id"]]]
    return files, report


def round_robin(rows: list[dict]) -> list[dict]:
    """Rows reordered as domain A's 1st, domain B's 1st, ..., domain A's 2nd, ... (domains sorted)."""
    by_domain: dict[str, list[dict]] = {}
    for row in rows:
        by_domain.setdefault(row["domain"], []).append(row)
    ordered = []
    for index in range(max((len(v) for v in by_domain.values()), default=0)):
        ordered += [by_domain[d][index] for d in sorted(by_domain) if index < len(by_domain[d])]
    return ordered


def render(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def print_summary(files: dict[str, list[dict]], report: dict[str, dict[str, list[str]]]) -> None:
    """Rows per kind and per domain for both pair files, margins, and every construction made or skipped."""
    for name, split in (("train", "train"), ("heldout_pairs", "heldout")):
        rows = files[name]
        kinds = Counter(row["kind"] for row in rows)
        print(f"\n{name}.jsonl: {len(rows)} rows; " + ", ".join(f"{k} {kinds[k]}" for k in DIFFICULTY))
        per_prompt = Counter(row["id"] for row in rows)
        print(f"  prompts: {len(per_prompt)}; rows per prompt → prompts: {dict(Counter(per_prompt.values()))}")
        by_domain: dict[str, Counter] = {}
        for row in rows:
            by_domain.setdefault(row["domain"], Counter())[row["kind"]] += 1
        print(f"  {'domain':<12} {'rows':>5} " + " ".join(f"{k:>10}" for k in DIFFICULTY))
        for domain, counts in sorted(by_domain.items()):
            print(f"  {domain:<12} {sum(counts.values()):>5} " + " ".join(f"{counts[k]:>10}" for k in DIFFICULTY))
        for kind in DIFFICULTY:
            margins = [row["margin"] for row in rows if row["kind"] == kind]
            print(
                f"  margin {kind:<10} min {min(margins):.4f}  mean {sum(margins) / len(margins):.4f}  "
                f"max {max(margins):.4f}"
            )
        print("  constructions beyond the 3 verbose + hand-written vague + hand-written incomplete:")
        for reason, ids in sorted(report[split].items()):
            listed = f"  ({', '.join(ids)})" if not reason.startswith("made") and len(ids) <= 8 else ""
            print(f"    {len(ids):>4}  {reason}{listed}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the files on disk differ from a fresh build")
    args = parser.parse_args()
    files, report = build()
    stale = []
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        path = OUT_DIR / f"{name}.jsonl"
        text = render(rows)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.write_text(text, encoding="utf-8")
        print(f"{path.relative_to(ROOT)}: {len(rows)} rows")
    print_summary(files, report)
    if stale:
        print("stale (run scripts/build_concise_data.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Loop pairs: each looping answer of the policy against its own start, cut where the loop begins.

A small model's greedy answers loop ("1. Use a debit card. 2. Set a budget. 3. Use a debit card. …" to the length
cap). A pair whose chosen answer is the loop-free start of that very answer (`align.data.repetition.loop_free_start`)
and whose rejected answer is the whole looping answer shares every token up to the point where the loop begins, so
the preference loss acts there: end the answer rather than repeat it, and make the repeated tail unlikely. It is the
on-policy form of unlikelihood training against repetition (Welleck et al. 2020, "Neural Text Generation with
Unlikelihood Training"; Xu et al. 2022, "Learning to Break the Loop", which pushes down self-reinforced repeats).
"""

from __future__ import annotations

from align.data.repetition import loop_free_start
from align.data.scoring import concise_score, count_words, score_answer
from align.on_policy.candidates import Candidate
from align.on_policy.prompts import PromptRow

#: The `kind` of a loop pair (the pair builder's kinds are verbose, vague, incomplete and other).
LOOP_KIND = "loop"


def _row(prompt: PromptRow, start: str, looping: str) -> dict:
    """A loop pair in the pair builder's row layout (`margin` = the start's concise score: the loop scores 0)."""
    budget = count_words(prompt.reference) if prompt.reference else None
    score = round(concise_score(score_answer(prompt.prompt, start, prompt.key_points), budget), 4)
    row = {
        "prompt": prompt.prompt,
        "chosen": start,
        "rejected": looping,
        "margin": score,
        "difficulty": "easy",
        "kind": LOOP_KIND,
        "chosen_score": score,
        "rejected_score": 0.0,
        "chosen_words": count_words(start),
        "rejected_words": count_words(looping),
        "source": prompt.location,
    }
    if prompt.key_points:
        row["key_points"] = list(prompt.key_points)
    if prompt.reference:
        row["reference"] = prompt.reference
    return row


def loop_pairs(prompts: list[PromptRow], candidates: list[list[Candidate]], per_prompt: int | None) -> list[dict]:
    """For each prompt, up to `per_prompt` (None: no cap) of its sampled answers that loop and keep a loop-free
    start of at least a few words, in candidate order (the greedy answer first when sampled): that start as chosen,
    the looping answer as rejected."""
    rows = []
    for prompt, group in zip(prompts, candidates, strict=True):
        found = []
        for candidate in group:
            start = loop_free_start(candidate.text) if candidate.loops and not candidate.reference else None
            if start and all(start != row["chosen"] for row in found):
                found.append(_row(prompt, start, candidate.text))
        rows += found[:per_prompt] if per_prompt is not None else found
    return rows

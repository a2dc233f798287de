"""Rows made from candidates without pairing them: labelled answers (kto stages) and each prompt's best answer
(sft stages: rejection sampling). Each function returns the rows (dicts, as written to `generated.jsonl`) and the
counts its report gives."""

from __future__ import annotations

from collections import Counter

from align.on_policy.candidates import Candidate
from align.on_policy.prompts import PromptRow

DECIMALS = 4


def _common(row: PromptRow, candidate: Candidate) -> dict:
    return {
        "score": round(candidate.score, DECIMALS),
        "origin": "reference" if candidate.reference else "sampled",
        "source": row.location,
    }


def labelled_rows(rows: list[PromptRow], candidates: list[list[Candidate]], bar: float) -> tuple[list[dict], dict]:
    """Every candidate as a kto row: `label` true when it clears the quality bar (`Candidate.clears`), false when
    it does not. Counts: desirable, undesirable, and why answers were undesirable (below_bar, loops, cut)."""
    out, counts = [], Counter()
    for row, group in zip(rows, candidates, strict=True):
        for candidate in group:
            good = candidate.clears(bar)
            counts["desirable" if good else "undesirable"] += 1
            if not good:
                counts["loops" if candidate.loops else "cut" if candidate.cut else "below_bar"] += 1
            out.append({"prompt": row.prompt, "completion": candidate.text, "label": good, **_common(row, candidate)})
    return out, dict(counts)


def best_rows(rows: list[PromptRow], candidates: list[list[Candidate]], bar: float) -> tuple[list[dict], dict]:
    """Each prompt's best-ranked candidate (`Candidate.ranking`) that clears the quality bar, as an sft row
    (`completion`); a prompt none of whose answers clears it gives no row (counted as `prompts_without_rows`)."""
    out, counts = [], Counter()
    for row, group in zip(rows, candidates, strict=True):
        good = [c for c in group if c.clears(bar)]
        if not good:
            counts["prompts_without_rows"] += 1
            continue
        best = max(good, key=lambda c: c.ranking)
        counts["chosen_reference" if best.reference else "chosen_sampled"] += 1
        out.append({"prompt": row.prompt, "completion": best.text, **_common(row, best)})
    return out, dict(counts)

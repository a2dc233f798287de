"""What `align data build` read, dropped and wrote (`BuildReport`), and where that report is saved."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class BuildReport:
    """What a build read, dropped and wrote. Pair counts are chosen–rejected comparisons (a K-negative row is K of
    them): `candidate_pairs` = `pairs_written` + Σ `dropped`. Margins and thresholds are in `ranked_by` units; shares
    are fractions of rows; word means are whitespace words per answer. `scorers` are align's scorers and their
    weights (`align.scorers`): what ranks the answers under "concise" and "scorers", what vets the data's pairs under
    "both", and what breaks the data's ties."""

    ranked_by: str
    prompts_read: int
    prompts_with_pairs: int
    prompts_without_pairs: dict[str, int]
    candidate_pairs: int
    dropped: dict[str, int]
    pairs_written: int
    rows_written: int
    kinds: dict[str, int]
    difficulties: dict[str, int]
    difficulty_thresholds: tuple[float, float] | None
    thresholds_from: str
    chosen_shorter_share_before: float | None
    chosen_shorter_share_after: float | None
    mean_chosen_words: float | None
    mean_rejected_words: float | None
    columns_shadowed: dict[str, int]
    options: dict
    input: str = ""
    output: str = ""
    dropped_bad_rows: dict[str, int] = field(default_factory=dict)
    scorers: dict[str, float] = field(default_factory=lambda: {"concise": 1.0})

    def to_dict(self) -> dict:
        """Plain JSON-ready values."""
        return {**asdict(self), "difficulty_thresholds": list(self.difficulty_thresholds or []) or None}

    def to_text(self) -> str:
        """A few lines for people: what was written, what was dropped and why, and the balance of the rows."""

        def counts(values: dict[str, int]) -> str:
            return ", ".join(f"{key} {value}" for key, value in values.items() if value) or "none"

        limits, after = self.difficulty_thresholds, self.chosen_shorter_share_after
        how = "none" if limits is None else f"hard < {limits[0]:g} ≤ medium < {limits[1]:g} ≤ easy"
        scorers = ", ".join(f"{name} {weight:g}" for name, weight in self.scorers.items())
        ranked = {
            "data": "the data's scores",
            "concise": "align's concise score (0-1)",
            "scorers": f"align's scorers ({scorers}{'; z-scored per prompt' if len(self.scorers) > 1 else ''})",
            "both": "the data's scores where align's scorers agree"
            + ("" if list(self.scorers) == ["concise"] else f" ({scorers})"),
        }[self.ranked_by]
        balanced = "not balanced" if self.options.get("max_chosen_shorter_share") is None else f"{after:.0%} after"
        lines = [
            f"{self.rows_written} rows ({self.pairs_written} pairs) from {self.prompts_read} prompts ranked by "
            f"{ranked}; prompts without pairs: {counts(self.prompts_without_pairs)}",
            f"candidate pairs {self.candidate_pairs}: written {self.pairs_written}; dropped: {counts(self.dropped)}",
            f"kinds: {counts(self.kinds)}; difficulty: {counts(self.difficulties)} ({self.thresholds_from}: {how})",
            f"chosen answer shorter in {self.chosen_shorter_share_before:.0%} of rows ({balanced}); mean words: "
            f"chosen {self.mean_chosen_words}, rejected {self.mean_rejected_words}"
            if self.rows_written
            else "",
            f"input columns replaced by ours: {counts(self.columns_shadowed)}" if self.columns_shadowed else "",
            f"bad input rows dropped: {counts(self.dropped_bad_rows)}" if self.dropped_bad_rows else "",
            f"wrote {self.output} and {report_path(Path(self.output))}" if self.output else "",
        ]
        return "\n".join(line for line in lines if line)


def report_path(output: Path) -> Path:
    """Where the report of a build writing `output` goes: `pairs.jsonl` → `pairs.report.json`."""
    return output.with_suffix(".report.json")

"""Training data: reading files, normalising rows (pairs, SFT completions, KTO feedback), splitting."""

from align.data.kto import KtoRow, load_kto_rows
from align.data.preference import load_preference_rows, split_rows
from align.data.rows import PreferenceRow
from align.data.sft import CompletionRow, load_completion_rows

__all__ = [
    "CompletionRow",
    "KtoRow",
    "PreferenceRow",
    "load_completion_rows",
    "load_kto_rows",
    "load_preference_rows",
    "split_rows",
]

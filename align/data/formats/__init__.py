"""Preference data in many shapes: readers by container (JSONL, JSON, CSV, Parquet, save_to_disk folders, Hub ids),
normalisers by format (standard, conversational, implicit_prompt, scored, completion, kto), and loading/mixing
whole sources."""

from align.data.formats.normalise import (
    FIELDS,
    FORMATS,
    FormatOptions,
    Normaliser,
    ScoredPrompt,
    combined_score,
    detect_format,
    normalise_completion,
    normalise_conversational,
    normalise_implicit_prompt,
    normalise_scored,
    normalise_standard,
    register_format,
)
from align.data.formats.readers import READERS, Location, Record, read_records, register_reader
from align.data.formats.sources import load_source, mix_sources
from align.data.formats.unpaired import normalise_kto, parse_label

__all__ = [
    "FIELDS",
    "FORMATS",
    "READERS",
    "FormatOptions",
    "Location",
    "Normaliser",
    "Record",
    "ScoredPrompt",
    "combined_score",
    "detect_format",
    "load_source",
    "mix_sources",
    "normalise_completion",
    "normalise_conversational",
    "normalise_implicit_prompt",
    "normalise_kto",
    "normalise_scored",
    "normalise_standard",
    "parse_label",
    "read_records",
    "register_format",
    "register_reader",
]

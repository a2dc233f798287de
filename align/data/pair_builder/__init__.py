"""The pair builder behind `align data build`: preference pairs from scored multi-answer rows.

`options` holds what a build may be told (`BuildOptions`), `build` turns scored prompts into labelled, balanced rows
(pure), `report` says what a build read, dropped and wrote (`BuildReport`), `files` reads the input and writes the
pairs and the report.
"""

from align.data.pair_builder.build import DIFFICULTIES, DROP_REASONS, build_pairs, classify_kind, difficulty, tertiles
from align.data.pair_builder.files import write_pairs
from align.data.pair_builder.options import BuildOptions
from align.data.pair_builder.report import BuildReport, report_path

__all__ = [
    "DIFFICULTIES",
    "DROP_REASONS",
    "BuildOptions",
    "BuildReport",
    "build_pairs",
    "classify_kind",
    "difficulty",
    "report_path",
    "tertiles",
    "write_pairs",
]

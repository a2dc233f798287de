"""Answers split into the units the scorer reads: normalised words, list items and sentences.

Shared by the concise scorer (`align.data.scoring`) and the repetition measures (`align.data.repetition`); stdlib
`re` only, deterministic.
"""

from __future__ import annotations

import re

_WORD_RE = re.compile(r"[a-z0-9]+")
_BULLET_RE = re.compile(r"^[ \t]*[-*•][ \t]+(?=\S)", re.MULTILINE)
_NUMBER_MARK_RE = re.compile(r"(?:^|(?<=\s))(\d{1,2})[.)][ \t]+(?=\S)")
# Sentences end at . ! ? (plus closing quotes/brackets) before whitespace, and at line breaks (list items).
SENTENCE_END_RE = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\s*\n\s*")


def normalise(text: str) -> str:
    """Lower case; possessive 's dropped and other apostrophes removed ("kit's" → "kit", "don't" → "dont");
    other punctuation and backticks → spaces."""
    text = re.sub(r"'s\b", "", text.lower().replace("\u2019", "'")).replace("'", "")
    return " ".join(_WORD_RE.findall(text))


def list_markers(text: str) -> list[tuple[int, int]]:
    """Spans of bullets at line starts and of "N. "/"N) " markers that count 1, 2, 3, ... (a new "1." restarts).

    Requiring the sequence keeps a sentence that ends in a number ("set it to 2. Then wait.") from being read as a list.
    """
    spans = [m.span() for m in _BULLET_RE.finditer(text)]
    expected = 1
    for match in _NUMBER_MARK_RE.finditer(text):
        number = int(match.group(1))
        if number in (1, expected):
            spans.append(match.span())
            expected = number + 1
    return spans


def strip_list_markers(text: str) -> str:
    """Each list marker becomes a line break, so every list item is a sentence of its own."""
    for start, end in sorted(list_markers(text), reverse=True):
        text = text[:start] + "\n" + text[end:]
    return text


def split_sentences(text: str) -> list[str]:
    """Sentences with list markers stripped, so "1. Boil water. 2. Add eggs." → ["Boil water.", "Add eggs."]."""
    return [s.strip() for s in SENTENCE_END_RE.split(strip_list_markers(text)) if s.strip()]

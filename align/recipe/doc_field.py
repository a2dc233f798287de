"""`doc`: a recipe dataclass field with its documentation attached, shared by the schema modules."""

from __future__ import annotations

from dataclasses import field
from typing import Any


def doc(text: str, **kwargs) -> Any:
    """A dataclass field with its documentation attached (`--explain` prints it)."""
    return field(metadata={"doc": text}, **kwargs)

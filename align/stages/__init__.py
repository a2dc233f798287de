"""Stage kinds: the registry. A kind is one module here (a `StageKind` subclass) plus one line below.

Everything kind-specific — recipe checks, how rows are read and checked, the trainer, how the loss is reported — is
asked of `stage_kind(stage.kind)`; nothing else in align compares kind names.
"""

from __future__ import annotations

from align.stages.kind import StageKind
from align.stages.kto import KtoStage
from align.stages.preference import PreferenceStage
from align.stages.sft import SftStage

STAGE_KINDS: dict[str, StageKind] = {kind.name: kind for kind in (PreferenceStage(), SftStage(), KtoStage())}

#: The kind a stage is when the recipe does not say.
DEFAULT_KIND = "preference"


def stage_kind(name: str) -> StageKind:
    """The registered kind called `name` (recipes are validated against `STAGE_KINDS` before this is asked)."""
    try:
        return STAGE_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown stage kind {name!r}: one of {', '.join(STAGE_KINDS)}") from None


__all__ = ["DEFAULT_KIND", "STAGE_KINDS", "StageKind", "stage_kind"]

"""`align validate --explain KEY`: the one documentation of every recipe key."""

from __future__ import annotations

from align.errors import AlignError
from align.recipe.field_docs import explain_passthrough, explain_quantization
from align.recipe.schema import Recipe
from align.recipe.typed import field_docs, suggest


def _loss_catalogue() -> str:
    from align.losses import loss_info, loss_names

    lines = ["Losses (stages.loss.name), with their parameters and defaults:"]
    for name in loss_names():
        info = loss_info(name)
        params = ", ".join(f"{k}={v}" for k, v in info.defaults.items()) or "no parameters"
        ref = "reference" if info.needs_reference else "reference-free"
        lines.append(f"  {name:10s} {info.summary}  [{ref}; {params}]")
    return "\n".join(lines)


def explain(key: str) -> str:
    """Documentation for `key` (dotted, list indices dropped: `stages.loss`, `training.learning_rate`)."""
    key = key.strip()
    if key in ("loss", "losses", "stages.loss.name"):
        return _loss_catalogue()
    passthrough = explain_passthrough(key)
    if passthrough:
        return passthrough
    docs = field_docs(Recipe)
    if key in docs:
        extra = "\n\n" + _loss_catalogue() if key == "stages.loss" else ""
        if key == "model.quantization":
            extra = "\n\n" + explain_quantization(key)
        return f"{key}: {docs[key]}{extra}"
    raise AlignError(f"--explain {key!r}: no such recipe key{suggest(key, docs)}")

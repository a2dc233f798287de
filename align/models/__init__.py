"""Model names, preparation of the embedded models, and loading a model with its tokenizer."""

from align.models import embedded, tiny  # noqa: F401  (register the short names)
from align.models.loading import load_model, load_tokenizer
from align.models.registry import (
    DEFAULT_MODEL,
    cache_dir,
    hub_model_id,
    prepare_model,
    resolve_model_path,
    short_model_names,
    short_name_for_hub_id,
)
from align.models.tiny import build_tiny_model

__all__ = [
    "DEFAULT_MODEL",
    "build_tiny_model",
    "cache_dir",
    "hub_model_id",
    "load_model",
    "load_tokenizer",
    "prepare_model",
    "resolve_model_path",
    "short_model_names",
    "short_name_for_hub_id",
]

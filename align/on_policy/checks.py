"""Recipe checks of `data.generate` (on-policy stages) and of the stage names its rounds add."""

from __future__ import annotations

import math
from pathlib import Path

from align.on_policy.vllm_sampling import check_backend
from align.recipe.typed import Collector, suggest
from align.recipe.yaml_source import KeyPath


def _number_in(value, low: float, high: float = math.inf, low_open: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return (low < value if low_open else low <= value) and value <= high


def check_counts(settings, path: KeyPath, out: Collector) -> None:
    """Sampling and building numbers out of range, each at its key (also used for `align data build` flags)."""
    wholes = (("samples", 1), ("max_new_tokens", 1), ("rounds", 1), ("negatives", 1))
    for key, low in wholes:
        if getattr(settings, key) < low:
            out.add(path + (key,), f"{getattr(settings, key)} must be a whole number ≥ {low}")
    for key in ("max_prompts", "max_pairs_per_prompt", "batch_size"):
        value = getattr(settings, key)
        if value is not None and value < 1:
            out.add(path + (key,), f"{value} must be a whole number ≥ 1, or unset")
    if not _number_in(settings.temperature, 0.0, low_open=True):
        out.add(path + ("temperature",), f"{settings.temperature} must be a number > 0")
    if not _number_in(settings.top_p, 0.0, 1.0, low_open=True):
        out.add(path + ("top_p",), f"{settings.top_p} must be in (0, 1]")
    if not _number_in(settings.min_margin, 0.0):
        out.add(path + ("min_margin",), f"{settings.min_margin} must be a number ≥ 0")
    if not _number_in(settings.min_chosen_score, 0.0, 1.0):
        out.add(path + ("min_chosen_score",), f"{settings.min_chosen_score} must be a concise score in [0, 1]")


def check_loop_pairs(settings, kind, path: KeyPath, out: Collector) -> None:
    """`loop_pairs` makes one-against-one pairs: only for a kind that trains on pairs, with `negatives: 1`."""
    if settings.loop_pairs and (kind.generated_format != "standard" or settings.negatives != 1):
        message = "makes pairs (one chosen, one rejected): only in a preference stage with negatives: 1"
        out.add(path + ("loop_pairs",), message)


def _check_scorers(settings, path: KeyPath, out: Collector) -> None:
    if not settings.scorers:
        out.add(path + ("scorers",), "needs at least one scorer, e.g. {concise: 1.0}")
    from align.scorers import SCORERS

    for name, weight in settings.scorers.items():
        if name not in SCORERS:
            out.add(path + ("scorers", name), f"unknown scorer{suggest(str(name), SCORERS)}")
        elif not _number_in(weight, 0.0, low_open=True):
            out.add(path + ("scorers", name), f"weight {weight!r} must be a number > 0")


def check_generate(stage, kind, base_dir: Path, path: KeyPath, out: Collector) -> None:
    """Problems with a stage's `data.generate` mapping, each at its key."""
    settings = stage.data.generate
    if kind.generated_format is None:
        out.add(path, f"{kind.name} stages cannot make rows from sampled answers; remove `generate`")
        return
    prompts = base_dir / Path(settings.prompts).expanduser()
    if not prompts.is_file():
        out.add(path + ("prompts",), f"no such file: {prompts}")
    unknown = sorted(set(settings.columns) - {"prompt", "key_points", "reference"})
    if unknown:
        out.add(path + ("columns", unknown[0]), "maps only prompt, key_points and reference")
    check_counts(settings, path, out)
    check_loop_pairs(settings, kind, path, out)
    check_backend(settings, path, out)
    _check_scorers(settings, path, out)
    if settings.reward_model is not None and "reward_model" not in settings.scorers:
        out.add(path + ("reward_model",), "is set but `scorers` does not weight it; add `reward_model: 0.5` there")
    if settings.reward_model is None and "reward_model" in settings.scorers:
        out.add(
            path + ("scorers", "reward_model"),
            "needs `reward_model`: a sequence-classification model's folder or Hub id",
        )


def check_round_names(stages, out: Collector) -> None:
    """A round's stage name (`<name>-round<r>`) must not be another stage's."""
    seen: set[str] = set()
    for stage in stages:
        if stage.name in seen:
            message = f"two stages are named {stage.name!r} (a stage's rounds are named <name>-round<r>); rename one"
            out.add(("stages",), message)
        seen.add(stage.name)

"""Load a recipe file: YAML → overrides → typed `Recipe`, with every problem reported at once."""

from __future__ import annotations

import copy
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from align.errors import AlignError
from align.losses import LossTerm, loss_info, loss_names, reward_term
from align.recipe.inheritance import interpolate_env, load_with_bases
from align.recipe.schema import LossConfig, Recipe, StageConfig
from align.recipe.trl_checks import (
    check_training_keys,
    validate_peft,
    validate_quantization,
    validate_training_values,
)
from align.recipe.typed import _MISSING, Collector, build_dataclass, convert, suggest
from align.recipe.yaml_source import KeyPath, apply_override
from align.stages import DEFAULT_KIND, STAGE_KINDS, StageKind, stage_kind

STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: A stage's metrics are `<stage>/<key>`: a stage named `eval` would mix its training figures into trl's `eval/<key>`.
RESERVED_STAGE_NAMES = ("eval",)


@dataclass
class LoadedRecipe:
    """A validated recipe, the mapping it was built from (overrides applied) and its folder (for relative paths)."""

    recipe: Recipe
    raw: dict
    source: str
    base_dir: Path

    def resolve_path(self, path: str) -> Path:
        """A data path as written in the recipe, relative to the recipe's folder."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    def resolved_raw(self) -> dict:
        """The mapping that ran, with data paths made absolute, so `recipe.resolved.yaml` loads from anywhere."""
        raw = copy.deepcopy(self.raw)
        for stage in raw.get("stages") or []:
            for key in ("train", "eval"):
                sources = (stage.get("data") or {}).get(key) or []
                for source in sources if isinstance(sources, list) else [sources]:
                    local = isinstance(source, dict) and isinstance(source.get("path"), str)
                    if local and self.resolve_path(source["path"]).exists():  # Hub ids stay as they are
                        source["path"] = str(self.resolve_path(source["path"]).resolve())
        return raw

    def stage_training(self, stage: StageConfig) -> dict:
        """The recipe's top-level `training` overlaid with the stage's own."""
        return {**self.recipe.training, **stage.training}


def _convert_loss(tp: Any, value: Any, path: KeyPath, out: Collector) -> Any:
    """`loss:` is one mapping or a list; keys other than name/weight are the loss's own parameters."""
    items = value if isinstance(value, list) else [value]
    if not items:
        out.add(path, "needs at least one loss, e.g. {name: dpo, beta: 0.1}")
        return _MISSING
    terms = []
    for index, item in enumerate(items):
        item_path = path + (index,) if isinstance(value, list) else path
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or "name" not in item:
            out.add(item_path, "each loss is a mapping with a `name`, e.g. {name: dpo, beta: 0.1}")
            return _MISSING
        name = item["name"]
        if name not in loss_names():
            out.add(item_path + ("name",), f"unknown loss {name!r}{suggest(str(name), loss_names())}")
            return _MISSING
        defaults = loss_info(name).defaults
        params = {}
        for key, param in item.items():
            if key in ("name", "weight", "rewards"):
                continue
            if key not in defaults:
                out.add(item_path + (key,), f"loss {name!r} has no parameter {key!r}{suggest(str(key), defaults)}")
                continue
            expected = type(defaults[key]) if defaults[key] is not None else float
            converted = convert(expected, param, item_path + (key,), out)
            allowed = loss_info(name).ranges.get(key)
            if converted is not _MISSING and allowed is not None and converted not in allowed:
                out.add(item_path + (key,), f"{converted} is outside the range of {name}'s {key}: {allowed}")
            elif converted is not _MISSING:
                params[key] = converted
        weight = convert(float, item.get("weight", 1.0), item_path + ("weight",), out)
        rewards = convert(bool, item.get("rewards", False), item_path + ("rewards",), out)
        weight = 1.0 if weight is _MISSING else weight
        terms.append(LossConfig(name=name, weight=weight, params=params, rewards=rewards is True))
    try:
        reward_term([LossTerm(t.name, t.weight, rewards=t.rewards) for t in terms])
    except ValueError as exc:
        out.add(path, str(exc))
    return terms


def _convert_kind(tp: Any, value: Any, path: KeyPath, out: Collector) -> Any:
    """`kind:` names a stage kind registered in `align.stages` (asked at load time, so a registered kind is known)."""
    value = convert(str, value, path, out)
    if value is _MISSING or value in STAGE_KINDS:
        return value
    out.add(path, f"{value!r} is not a stage kind; use one of {', '.join(repr(k) for k in STAGE_KINDS)}")
    return _MISSING


def _convert_report_to(tp: Any, value: Any, path: KeyPath, out: Collector) -> Any:
    """`report_to:` one tracker name or a list of them, each named once; `none` alone (or `[]`) means no tracker.
    The recipe then holds the list of trackers, `none` left out."""
    names = typing.get_args(typing.get_args(tp)[0])
    items = value if isinstance(value, list) else [value]
    problems = len(out.problems)
    for index, item in enumerate(items):
        where = path + (index,) if isinstance(value, list) else path
        if item not in names:
            out.add(where, f"{item!r} is not a tracker; use {', '.join(repr(n) for n in names)} or a list of them")
        elif item in items[:index]:
            out.add(where, f"{item!r} is listed twice")
    if "none" in items and len(items) > 1:
        out.add(path, "'none' cannot be combined with trackers; remove it (or the trackers)")
    return _MISSING if len(out.problems) > problems else [item for item in items if item != "none"]


def _convert_stages(tp: Any, value: Any, path: KeyPath, out: Collector) -> Any:
    """`stages:` must be a list. `convert` would take a single mapping as a one-stage list, but the raw stages are
    then indexed as a list (`_check_stages`: a KeyError traceback for an sft stage; `resolved_raw` at training)."""
    if not isinstance(value, list):
        out.add(path, f"expected a list of stages (`- name: ...` items), got {type(value).__name__}")
        return _MISSING
    return convert(tp, value, path, out)


def _check_source(source, kind: StageKind, base_dir: Path, path: KeyPath, out: Collector) -> None:
    """The source exists (or is a Hub id) and its weight is positive; then the stage kind's own source checks."""
    from align.data.formats.readers import READERS, SAVED_DATASET_MARKERS, resolve_input

    try:
        target = resolve_input(source.path, base_dir)
    except AlignError as exc:
        out.add(path + ("path",), f"{exc.problems[0].message}: {exc.problems[0].where}")
        return
    # The reader is chosen by suffix: an unreadable kind of file would otherwise pass here and fail at training.
    if target is not None and target.is_file() and target.suffix.lower() not in READERS:
        out.add(
            path + ("path",),
            f"{target.suffix or 'no suffix'!s} is not a data file type align reads "
            f"({', '.join(sorted(READERS))}, or a save_to_disk folder)",
        )
    if target is not None and target.is_dir() and not any((target / m).exists() for m in SAVED_DATASET_MARKERS):
        out.add(path + ("path",), "is a folder but not one written by datasets' save_to_disk")
    kind.check_source(source, path, out)
    if source.weight <= 0:
        out.add(path + ("weight",), f"{source.weight} must be positive")
    if source.max_rows is not None and source.max_rows <= 0:
        out.add(path + ("max_rows",), f"{source.max_rows} must be a positive number of rows")


def _check_eval(stage, base_dir: Path, path: KeyPath, out: Collector) -> None:
    """Probe prompts exist, sizes are positive, and the probe gates have probes to measure (the held-out pair gate
    is the stage kind's to check)."""
    ev, gates, at = stage.eval, stage.eval.gates, path + ("eval",)
    if ev.prompts is not None and not (base_dir / ev.prompts).expanduser().is_file():
        out.add(at + ("prompts",), f"no such file: {base_dir / ev.prompts}")
    for key in ("max_prompts", "max_new_tokens", "batch_size"):
        value = getattr(ev, key)
        if value is not None and value <= 0:
            out.add(at + (key,), f"{value} must be positive")
    if gates.max_mean_tokens_ratio is not None and not gates.max_mean_tokens_ratio > 0:
        out.add(at + ("gates", "max_mean_tokens_ratio"), f"{gates.max_mean_tokens_ratio} must be a positive ratio")
    drop = gates.max_key_point_recall_drop
    if drop is not None and not -1.0 <= drop <= 1.0:
        out.add(at + ("gates", "max_key_point_recall_drop"), f"{drop} must be in [-1, 1] (recall is in [0, 1])")
    for key, low in (("max_loop_rate", 0.0), ("max_loop_rate_increase", -1.0)):
        limit = getattr(gates, key)
        if limit is not None and not low <= limit <= 1.0:
            out.add(at + ("gates", key), f"{limit} must be in [{low:g}, 1] (a loop rate is a share of answers)")
    for key in ("max_mean_tokens_ratio", "max_key_point_recall_drop", "max_loop_rate", "max_loop_rate_increase"):
        if getattr(gates, key) is not None and ev.prompts is None:
            out.add(at + ("gates", key), "measures probe answers: set eval.prompts (JSONL prompts with key_points)")


def _check_stages(recipe: Recipe, raw_stages: list, base_dir: Path, top_level_ok: bool, out: Collector) -> None:
    seen: set[str] = set()
    for index, stage in enumerate(recipe.stages):
        path, kind = ("stages", index), stage_kind(stage.kind)
        if not STAGE_NAME.match(stage.name):
            out.add(path + ("name",), f"{stage.name!r}: use letters, digits, '-' and '_' (it names a folder)")
        if stage.name in RESERVED_STAGE_NAMES:
            out.add(path + ("name",), f"{stage.name!r} is reserved: trackers log held-out figures as eval/<key>")
        if stage.name in seen:
            out.add(path + ("name",), f"duplicate stage name {stage.name!r}; stage names must be unique")
        seen.add(stage.name)
        if not stage.data.train and stage.data.generate is None:
            out.add(path + ("data", "train"), "needs at least one source (or `data.generate` to sample its rows)")
        if stage.data.generate is not None:
            # Imported here: align.on_policy's checks use this package's typed helpers, which import this module.
            from align.on_policy.checks import check_generate

            check_generate(stage, kind, base_dir, path + ("data", "generate"), out)
        for key in ("train", "eval"):
            for j, source in enumerate(getattr(stage.data, key)):
                _check_source(source, kind, base_dir, path + ("data", key, j), out)
        if not 0.0 <= stage.data.eval_fraction < 1.0:
            out.add(path + ("data", "eval_fraction"), f"{stage.data.eval_fraction} must be in [0, 1)")
        # mix_total too: 0 or a negative total passed validation and only failed in mix_sources at training time.
        for key in ("max_rows", "max_eval_rows", "mix_total"):
            value = getattr(stage.data, key)
            if value is not None and value <= 0:
                out.add(path + ("data", key), f"{value} must be a positive number of rows")
        for j, term in enumerate(stage.loss):
            if term.weight <= 0:
                # `loss: {name: dpo, weight: 0}` is one mapping, not a list: its key path has no `[0]`.
                at = ("loss", j, "weight") if isinstance(raw_stages[index].get("loss"), list) else ("loss", "weight")
                out.add(path + at, f"{term.weight} must be positive")
        merged = {**recipe.training, **stage.training}
        if stage.data.order != "shuffled" and merged.get("train_sampling_strategy", "sequential") != "sequential":
            out.add(
                path + ("data", "order"),
                f"order {stage.data.order} needs the sequential sampler, but training.train_sampling_strategy is "
                f"{merged['train_sampling_strategy']!r}; remove it",
            )
        _check_eval(stage, base_dir, path, out)
        kind.check_stage(stage, raw_stages[index], merged, path, out)
        if top_level_ok and check_training_keys(stage.kind, stage.training, path + ("training",), out):
            validate_training_values(stage.kind, {**recipe.training, **stage.training}, path + ("training",), out)


def _expanded(stages: list, out: Collector) -> list:
    """The stages with each `data.generate.rounds: R` stage run as R stages (`align.on_policy.rounds`)."""
    from align.on_policy.checks import check_round_names
    from align.on_policy.rounds import expand_rounds

    stages = expand_rounds(stages)
    check_round_names(stages, out)
    return stages


def load_recipe(path: str | Path, overrides: list[str] = ()) -> LoadedRecipe:
    """Parse, override and validate a recipe; raise `AlignError` listing every problem found."""
    document = load_with_bases(path)
    env_problems = interpolate_env(document)
    for assignment in overrides:
        apply_override(document.data, assignment)
    out = Collector(
        document,
        custom={
            (StageConfig, "loss"): _convert_loss,
            (StageConfig, "kind"): _convert_kind,
            (Recipe, "stages"): _convert_stages,
            (Recipe, "report_to"): _convert_report_to,
        },
    )
    out.problems.extend(env_problems)
    recipe = build_dataclass(Recipe, document.data, (), out)
    base_dir = Path(path).resolve().parent
    if recipe is not _MISSING:
        if not recipe.stages:
            out.add(("stages",), "needs at least one stage")
        if not RUN_NAME.match(recipe.name):
            # The name becomes the default output folder runs/<name> and the tracker's run and group name.
            out.add(("name",), f"{recipe.name!r}: use letters, digits, '.', '-' and '_' (it names a folder)")
        # Top-level keys are checked against the union of the stage kinds in use, at their own lines.
        kinds = {stage.kind for stage in recipe.stages} or {DEFAULT_KIND}
        top_level_ok = all(check_training_keys(kind, recipe.training, ("training",), out) for kind in sorted(kinds))
        _check_stages(recipe, document.data["stages"], base_dir, top_level_ok, out)
        validate_peft(recipe.peft, ("peft",), out)
        recipe.stages = _expanded(recipe.stages, out)
        validate_quantization(recipe.model.quantization, ("model", "quantization"), out)
    if out.problems:
        raise AlignError(_dedupe(out.problems))
    return LoadedRecipe(recipe=recipe, raw=document.data, source=str(path), base_dir=base_dir)


def _dedupe(problems: list) -> list:
    seen, unique = set(), []
    for problem in problems:
        if str(problem) not in seen:
            seen.add(str(problem))
            unique.append(problem)
    return unique

"""Fuzzing every shipped recipe with bad input: each mutant is invalid by construction, and `align validate` must
exit 2 with one `error: FILE:LINE: KEY: message` line per problem (or `--set: KEY: ...` for an override), never a
traceback, never exit 0 or 1.

The generator is seeded and deterministic: per recipe, exactly `MUTANTS_PER_RECIPE` distinct mutants drawn in turn
from every class below. Broken-YAML mutants edit the recipe's text (comments and all); the others edit the parsed
mapping and write it back with `yaml.safe_dump`; `--set` mutants keep the text and add overrides. Each mutant is
written into a scratch copy of `recipes/<folder>/` next to a `data/` link to the repository's data, so the recipe's
relative data paths resolve and only the intended mutation is wrong.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import random
import re
import subprocess
import sys
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from align.cli import main
from align.losses import loss_info
from align.recipe import schema
from align.recipe.trl_checks import RESERVED_PEFT_KEYS, _QuantizationTypes, reserved_training_keys
from align.recipe.trl_configs import config_class, config_fields, lora_config_fields, quantization_fields
from align.recipe.yaml_source import RecipeLoader, format_path, parse_scalar

REPO = Path(__file__).resolve().parent.parent
RECIPES_DIR = REPO / "recipes"
# Every recipe we ship, at any depth; recipes/accelerate/ holds accelerate launcher configs, not recipes.
RECIPES = sorted(p for p in RECIPES_DIR.rglob("*.yaml") if "accelerate" not in p.relative_to(RECIPES_DIR).parts)
MUTANTS_PER_RECIPE = 200
SEED = 20240611
CLASSES = (
    "delete_required",
    "wrong_type",
    "unknown_key",
    "broken_yaml",
    "missing_file",
    "non_positive",
    "empty",
    "duplicate_stage",
    "bad_override",
)


@dataclass
class Mutant:
    """One invalid recipe: its text (or bytes), `--set` overrides, and a regex that some error line must match (the
    mutated key path, or the file and line of a text edit) so the error is about *this* mutation."""

    kind: str
    what: str
    # The mutant's content, or a function making it (None: the edit turned out not to break anything), so only the
    # mutants drawn are built: the candidates run to thousands per recipe.
    text: str | bytes | typing.Callable[[], str | bytes | None]
    expect: str
    overrides: list[str] = field(default_factory=list)
    pinned: bool = False  # always drawn (rare inputs that once slipped through), before the random ones


# --- helpers over the parsed mapping -----------------------------------------------------------------------------


def _load(text: str) -> dict:
    return yaml.load(text, Loader=RecipeLoader)


def _dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)


def _get(data, path):
    for part in path:
        data = data[part]
    return data


def _set(data, path, value) -> None:
    _get(data, path[:-1])[path[-1]] = value


def _delete(data, path) -> None:
    del _get(data, path[:-1])[path[-1]]


def _rename(data, path, new_key) -> None:
    """Rename key `path[-1]` of its mapping in place, keeping the key order."""
    parent = _get(data, path[:-1])
    items = [(new_key if key == path[-1] else key, value) for key, value in parent.items()]
    parent.clear()
    parent.update(items)


def _at(path) -> str:
    """A regex for an error located at key path `path` or below it (`: stages[0].data.max_rows:`)."""
    return ": " + re.escape(format_path(path)) + r"[:\[.]"


def _stages(data) -> list[tuple[int, dict]]:
    return list(enumerate(data["stages"]))


def _kind(stage: dict) -> str:
    return stage.get("kind", "preference")


def _sources(data):
    """`(path, source)` for every data source of every stage."""
    for i, stage in _stages(data):
        for role in ("train", "eval"):
            for j, source in enumerate(stage["data"].get(role) or []):
                yield ("stages", i, "data", role, j), source


def _loss_terms(data):
    """`(path, term)` for every loss term written as a mapping (a list item, or the stage's one `loss:` mapping)."""
    for i, stage in _stages(data):
        loss = stage.get("loss")
        if isinstance(loss, dict):
            yield ("stages", i, "loss"), loss
        elif isinstance(loss, list):
            for j, term in enumerate(loss):
                if isinstance(term, dict):
                    yield ("stages", i, "loss", j), term


# Schema containers: raw path → the dataclass its mapping becomes.
def _schema_containers(data):
    yield (), schema.Recipe
    if isinstance(data.get("model"), dict):
        yield ("model",), schema.ModelConfig
    for i, stage in _stages(data):
        yield ("stages", i), schema.StageConfig
        yield ("stages", i, "data"), schema.DataConfig
        if isinstance(stage.get("eval"), dict):
            yield ("stages", i, "eval"), schema.StageEvalConfig
            if isinstance(stage["eval"].get("gates"), dict):
                yield ("stages", i, "eval", "gates"), schema.GatesConfig
    for path, _ in _sources(data):
        yield path, schema.SourceConfig


def _training_containers(data):
    """`(path, kinds)`: the top-level `training` is checked for every stage kind in use, a stage's for its own."""
    if isinstance(data.get("training"), dict):
        yield ("training",), sorted({_kind(stage) for _, stage in _stages(data)})
    for i, stage in _stages(data):
        if isinstance(stage.get("training"), dict):
            yield ("stages", i, "training"), [_kind(stage)]


def _type_tag(tp) -> tuple[str, bool]:
    """A schema field type as (tag, optional)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _type_tag(inner)[0], True
    if origin is typing.Literal:
        return "literal", False
    if origin is list:
        (inner,) = typing.get_args(tp)
        return ("list_dataclass" if dataclasses.is_dataclass(inner) else "list_str"), False
    if dataclasses.is_dataclass(tp):
        return "dataclass", False
    return tp.__name__, False


# Values of the wrong type for each kind of field; None only where the field is not optional.
BAD_VALUES = {
    "str": [["a", "b"], {"k": "v"}, 12, True, 2.5],
    "int": ["many", [1], {"n": 1}, 2.5, True],
    "float": ["fast", [0.5], {"x": 1}, True],
    "bool": ["sure", 1, [True], {"b": True}],
    "dict": ["text", [1, 2], 5, True],
    "literal": ["bogus", 3, ["x"], {"x": 1}],
    "dataclass": ["text", [1, 2], 5, True],
    "list_dataclass": ["file.jsonl", 5, [[1]], [True]],
    "list_str": [5, [1, 2], [["a"]], {"a": 1}],
}
# Passthrough values annotated as plain float/int/bool (ints are fine for floats).
BAD_PLAIN = {float: ["fast", [0.1], {"x": 1}, True], int: ["four", 2.5, [2], True], bool: ["sure", 1, [True]]}


def _plain_hint(classes, key):
    """The plain type (float, int, bool; or it or None) all of `classes` annotate `key` with, else None."""
    hints = set()
    for cls in classes:
        hint = typing.get_type_hints(cls).get(key)
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
            hint = inner[0] if len(inner) == 1 else None
        hints.add(hint)
    return hints.pop() if len(hints) == 1 and hints <= {float, int, bool} else None


def _typos(key: str) -> list[str]:
    """Misspellings of `key`: adjacent letters swapped, a letter dropped or doubled, `-` for `_`, a plural."""
    out = {key + "s", key.replace("_", "-"), key[:1].upper() + key[1:]}
    for i in range(len(key)):
        out.add(key[:i] + key[i + 1 :])
        out.add(key[:i] + key[i] + key[i:])
        if i + 1 < len(key):
            out.add(key[:i] + key[i + 1] + key[i] + key[i + 2 :])
    return sorted(t for t in out if t != key and re.fullmatch(r"[A-Za-z][\w-]*", t))


# --- mutation classes ---------------------------------------------------------------------------------------------


def _mapping_mutant(kind: str, what: str, data: dict, edit, expect: str) -> Mutant:
    def build() -> str:
        mutated = copy.deepcopy(data)
        edit(mutated)
        return _dump(mutated)

    return Mutant(kind, what, build, expect)


def delete_required(data, text, rng):
    """Delete a required key: the recipe's name or stages, a stage's name/data, its data.train (unless
    data.generate makes its rows) or its data.generate.prompts, a source's path, a loss term's name."""
    paths = [("name",), ("stages",)]
    for i, stage in _stages(data):
        paths += [("stages", i, "name"), ("stages", i, "data")]
        generate = stage["data"].get("generate")
        if generate is None:
            paths.append(("stages", i, "data", "train"))
        elif "prompts" in generate:
            paths.append(("stages", i, "data", "generate", "prompts"))
    paths += [path + ("path",) for path, _ in _sources(data)]
    out = [
        _mapping_mutant("delete_required", f"delete {format_path(p)}", data, lambda d, p=p: _delete(d, p), _at(p))
        for p in paths
    ]
    for path, _ in _loss_terms(data):  # a term without a name is reported at the term
        out.append(
            _mapping_mutant(
                "delete_required",
                f"delete {format_path(path)}.name",
                data,
                lambda d, p=path: _delete(d, p + ("name",)),
                _at(path),
            )
        )
    return out


def wrong_type(data, text, rng):
    """A value of the wrong type on every field whose type is checked: the typed schema (present keys and absent
    optional ones), loss terms, and the plain-typed passthrough keys of `training`, `peft` and `model.quantization`."""
    cases = []
    for path, cls in _schema_containers(data):
        hints = typing.get_type_hints(cls)
        for spec in dataclasses.fields(cls):
            if (cls, spec.name) in ((schema.StageConfig, "loss"), (schema.LossConfig, "params")):
                continue
            tag, optional = _type_tag(hints[spec.name])
            required = spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
            values = BAD_VALUES[tag] + ([None] if not optional and tag not in ("dataclass", "list_dataclass") else [])
            if (cls, spec.name) == (schema.Recipe, "stages"):  # one stage as a mapping, not a list: a KeyError once
                values = values + [copy.deepcopy(data["stages"][-1])]
            if spec.name in _get(data, path) or not required:
                cases += [(path + (spec.name,), value) for value in values]
    for path, term in _loss_terms(data):
        cases += [(path + ("name",), value) for value in (5, ["dpo"], {"a": 1}, "no-such-loss")]
        for key in ["weight", *loss_info(term["name"]).defaults]:
            cases += [(path + (key,), value) for value in BAD_VALUES["float"]]
    for i, stage in _stages(data):
        if _kind(stage) == "preference":
            cases += [(("stages", i, "loss"), value) for value in (5, True, ["dpo", 7])]
    for path, kinds in _training_containers(data):
        classes = [config_class(kind) for kind in kinds]
        for key in sorted(set(_get(data, path)) | {"learning_rate", "per_device_train_batch_size", "bf16"}):
            hint = _plain_hint(classes, key)
            cases += [(path + (key,), value) for value in BAD_PLAIN.get(hint, [])]
    if isinstance(data.get("peft"), dict):
        from peft import LoraConfig

        for key in sorted(set(data["peft"]) | {"r", "lora_alpha", "lora_dropout", "use_rslora"}):
            cases += [(("peft", key), value) for value in BAD_PLAIN.get(_plain_hint([LoraConfig], key), [])]
    quantization = (data.get("model") or {}).get("quantization")
    if isinstance(quantization, dict):
        for key in sorted(quantization):
            hint = _plain_hint([_QuantizationTypes], key)
            cases += [(("model", "quantization", key), value) for value in BAD_PLAIN.get(hint, [])]
    cases += [(("base",), value) for value in (5, ["a.yaml"], {"path": "a.yaml"}, True)]
    out = [
        _mapping_mutant("wrong_type", f"{format_path(p)} = {v!r}", data, lambda d, p=p, v=v: _set(d, p, v), _at(p))
        for p, v in cases
    ]
    for mutant, (path, value) in zip(out, cases, strict=True):
        mutant.pinned = path == ("stages",) and isinstance(value, dict)
    return out


def unknown_key(data, text, rng):
    """An unknown key, a typo of a real one, in every mapping: top level, model, stages, data, sources, eval, gates,
    loss terms, `training` (trl passthrough), `peft`, `model.quantization`; plus a few made-up names."""
    containers = [(path, {f.name for f in dataclasses.fields(cls)}) for path, cls in _schema_containers(data)]
    training_known = config_fields("preference") | config_fields("sft") | set(reserved_training_keys("preference"))
    containers += [(path, training_known) for path, _ in _training_containers(data)]
    if isinstance(data.get("peft"), dict):
        containers.append((("peft",), lora_config_fields() | set(RESERVED_PEFT_KEYS)))
    if isinstance((data.get("model") or {}).get("quantization"), dict):
        containers.append((("model", "quantization"), set(quantization_fields())))
    terms = list(_loss_terms(data))
    containers += [(path, {"name", "weight", *loss_info(term["name"]).defaults}) for path, term in terms]
    out = []
    for path, known in containers:
        mapping = _get(data, path)
        for key in mapping:
            for typo in _typos(str(key)):
                if typo in known:
                    continue
                # A loss term without its `name` is reported at the term; any other typo at the misspelt key.
                expect = _at(path) if (path, key) in {(p, "name") for p, _ in terms} else _at(path + (typo,))
                out.append(
                    _mapping_mutant(
                        "unknown_key",
                        f"{format_path(path + (key,))} -> {typo}",
                        data,
                        lambda d, p=path + (key,), t=typo: _rename(d, p, t),
                        expect,
                    )
                )
        for extra in ("extra_option", "colour"):
            out.append(
                _mapping_mutant(
                    "unknown_key",
                    f"add {format_path(path + (extra,))}",
                    data,
                    lambda d, p=path + (extra,): _set(d, p, 1),
                    _at(path + (extra,)),
                )
            )
        # A key holding a line break (or a NUL) must still be reported on one line, escaped.
        for extra, shown in (("two\nlines", "two\\nlines"), ("nul\x00key", "nul\\x00key")):
            expect = ": " + re.escape(format_path(path + (shown,))) + ": unknown key"
            mutant = _mapping_mutant(
                "unknown_key",
                f"add {format_path(path + (shown,))}",
                data,
                lambda d, p=path + (extra,): _set(d, p, 1),
                expect,
            )
            mutant.pinned = path == ()
            out.append(mutant)
    return out


SCALAR_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_]\w*): +(?P<value>[^\s#\[{][^#]*?)\s*(?P<comment>#.*)?$")


def _yaml_breaks(text: str) -> bool:
    try:
        _load(text)
    except yaml.YAMLError:
        return True
    return False


def broken_yaml(data, text, rng):
    """Text edits YAML (or UTF-8) rejects: an unclosed bracket or brace, a line dedented or indented off its block,
    a tab for indentation, an unterminated quote, a stray line, a repeated key, a Latin-1 byte, a UTF-16 BOM.
    Edits PyYAML happens to accept (a quote closed by a later one) are discarded: only broken text counts."""
    lines = text.split("\n")
    out: list[Mutant] = []
    name_line = re.escape("{path}")  # placeholder; the file name is filled in when the mutant is written

    def add(what: str, new_lines: list[str], expect: str) -> None:
        def build() -> str | None:
            new_text = "\n".join(new_lines)
            return new_text if _yaml_breaks(new_text) else None

        out.append(Mutant("broken_yaml", what, build, expect))

    for n, line in enumerate(lines):
        number = n + 1
        invalid = name_line + r":\d+: invalid YAML"
        scalar = SCALAR_LINE.match(line)
        if "[" in line and "]" in line:
            cut = line.rindex("]")
            add(
                f"line {number}: drop the closing ]",
                lines[:n] + [line[:cut] + line[cut + 1 :]] + lines[n + 1 :],
                invalid,
            )
        if "{" in line and "}" in line:
            cut = line.rindex("}")
            add(
                f"line {number}: drop the closing }}",
                lines[:n] + [line[:cut] + line[cut + 1 :]] + lines[n + 1 :],
                invalid,
            )
        if scalar:
            head = f"{scalar['indent']}{scalar['key']}: "
            for broken in ("[unclosed, list", "{unclosed: map", '"unterminated', "'unterminated", "@reserved"):
                add(f"line {number}: value {broken}", lines[:n] + [head + broken] + lines[n + 1 :], invalid)
            # A repeated key: PyYAML keeps the last silently, align rejects it at the second one's line.
            dup = name_line + f":{number + 1}: " + r"\S+: duplicate key"
            out.append(
                Mutant(
                    "broken_yaml",
                    f"line {number}: repeat {scalar['key']}",
                    "\n".join(lines[: n + 1] + [line] + lines[n + 1 :]),
                    dup,
                )
            )
        if line.startswith("  ") and line.strip() and not line.strip().startswith("#"):
            indent = len(line) - len(line.lstrip(" "))
            add(f"line {number}: dedent by one", lines[:n] + [line[1:]] + lines[n + 1 :], invalid)
            add(f"line {number}: indent by three", lines[:n] + ["   " + line] + lines[n + 1 :], invalid)
            add(f"line {number}: tab indent", lines[:n] + ["\t" + line[indent:]] + lines[n + 1 :], invalid)
        if line.strip() and not line.startswith("#"):
            add(f"line {number}: stray line before it", lines[:n] + ["oops, not a key"] + lines[n:], invalid)
        latin1 = lines[:n] + [line + " # caf\udce9"] + lines[n + 1 :]
        encoded = "\n".join(latin1).encode("utf-8", "surrogateescape")
        out.append(Mutant("broken_yaml", f"line {number}: Latin-1 byte", encoded, name_line + f":{number}: not UTF-8"))
    out.append(Mutant("broken_yaml", "UTF-16 BOM", b"\xff\xfe" + text.encode(), name_line + ":1: not UTF-8"))
    out.append(Mutant("broken_yaml", "a list at the top", "- " + text.replace("\n", "\n  "), name_line + r":\d+: "))
    return out


def missing_file(data, text, rng):
    """A data path or probe-prompts path (or `base:`) naming a file that does not exist."""
    names = [
        "../../data/concise/trian.jsonl",
        "../../data/concise/missing.jsonl",
        "../../data/nope/train.jsonl",
        "/nonexistent/align-fuzz/pairs.jsonl",
        "../../data/concise/train.csv",
        "pairs.parquet",
        "./local.json",
        "../../data/concise/train.jsonl.bak.jsonl",
        "../../data/concise/two\nlines.jsonl",
        "../../data/concise/tab\tand\rreturn.jsonl",
    ]
    cases = [(path + ("path",), name) for path, _ in _sources(data) for name in names]
    for i, _ in _stages(data):
        cases += [(("stages", i, "eval", "prompts"), name) for name in names[:4]]
    cases += [(("base",), name) for name in ("missing-base.yaml", "../nowhere/base.yaml")]

    def edit(d, path, name):
        if path[-2:] == ("eval", "prompts"):
            d["stages"][path[1]].setdefault("eval", {})
        _set(d, path, name)

    out = [
        _mapping_mutant("missing_file", f"{format_path(p)} = {v!r}", data, lambda d, p=p, v=v: edit(d, p, v), _at(p))
        for p, v in cases
    ]
    for mutant, (path, name) in zip(out, cases, strict=True):
        mutant.pinned = path[:5] == ("stages", 0, "data", "train", 0) and any(c in name for c in "\n\r")
    return out


def non_positive(data, text, rng):
    """Zero or negative numbers in positive fields (and fractions outside their range): row limits, mix totals,
    source and loss weights, loss beta, probe sizes, batch sizes, learning rate, max_length, LoRA rank."""
    cases = []
    for i, _ in _stages(data):
        for key in ("max_rows", "max_eval_rows", "mix_total"):
            cases += [(("stages", i, "data", key), v) for v in (0, -1, -64)]
        cases += [(("stages", i, "data", "eval_fraction"), v) for v in (-0.1, 1.0, 1.5)]
        for key in ("max_prompts", "max_new_tokens", "batch_size"):
            cases += [(("stages", i, "eval", key), v) for v in (0, -8)]
        cases += [
            (("stages", i, "training", key), v)
            for key, v in (
                ("learning_rate", 0),
                ("learning_rate", -1e-4),
                ("per_device_train_batch_size", 0),
                ("per_device_train_batch_size", -2),
                ("per_device_eval_batch_size", 0),
                ("gradient_accumulation_steps", 0),
                ("max_length", 0),
                ("max_length", -128),
                ("logging_steps", -1),
                ("save_steps", 0),
            )
        ]
    for path, _ in _sources(data):
        cases += [(path + ("weight",), v) for v in (0, -0.5, -2)]
    for path, term in _loss_terms(data):
        cases += [(path + ("weight",), v) for v in (0, -1.0)]
        if "beta" in loss_info(term["name"]).defaults:
            cases += [(path + ("beta",), v) for v in (0, -0.1)]
    cases += [
        (("training", key), v)
        for key, v in (("learning_rate", 0), ("per_device_train_batch_size", 0), ("per_device_eval_batch_size", -1))
    ]
    cases += [(("peft", key), v) for key, v in (("r", 0), ("r", -8), ("lora_alpha", 0), ("lora_dropout", 1.5))]

    def edit(d, path, value):
        parent = d
        for part in path[:-1]:  # create a missing `eval:`, `training:` or `peft:` mapping
            parent = parent.setdefault(part, {}) if isinstance(part, str) else parent[part]
        parent[path[-1]] = value

    return [
        _mapping_mutant("non_positive", f"{format_path(p)} = {v}", data, lambda d, p=p, v=v: edit(d, p, v), _at(p))
        for p, v in cases
    ]


def empty(data, text, rng):
    """Empty things: no stages (`[]`, null, `[{}]`), a stage with no training sources (unless data.generate makes
    its rows) or no data, a preference stage with no loss, an empty stage name or data path, an empty file."""
    cases = [(("stages",), []), (("stages",), None), (("stages",), [{}])]
    for i, stage in _stages(data):
        if "generate" not in stage["data"]:
            cases.append((("stages", i, "data", "train"), []))
        cases += [(("stages", i, "data"), {}), (("stages", i, "name"), "")]
        if _kind(stage) == "preference":
            cases.append((("stages", i, "loss"), []))
    cases += [(path + ("path",), "") for path, _ in _sources(data)]
    out = [
        _mapping_mutant("empty", f"{format_path(p)} = {v!r}", data, lambda d, p=p, v=v: _set(d, p, v), _at(p))
        for p, v in cases
    ]
    out.append(Mutant("empty", "an empty file", "", _at(("name",))))
    out.append(Mutant("empty", "only comments", "# nothing here\n", _at(("stages",))))
    return out


def duplicate_stage(data, text, rng):
    """Two stages with one name: a later stage renamed to an earlier one's, or a stage repeated at the end."""
    stages = _stages(data)
    out = []
    for i, first in stages:
        for j, _ in stages[i + 1 :]:
            out.append(
                _mapping_mutant(
                    "duplicate_stage",
                    f"stages[{j}].name = {first['name']}",
                    data,
                    lambda d, i=i, j=j: _set(d, ("stages", j, "name"), d["stages"][i]["name"]),
                    _at(("stages", j, "name")),
                )
            )
        end = len(stages)
        out.append(
            _mapping_mutant(
                "duplicate_stage",
                f"repeat stages[{i}] at the end",
                data,
                lambda d, i=i: d["stages"].append(copy.deepcopy(d["stages"][i])),
                _at(("stages", end, "name")),
            )
        )
        if i:  # the repeat placed first: the original, later stage is the duplicate
            out.append(
                _mapping_mutant(
                    "duplicate_stage",
                    f"repeat stages[{i}] first",
                    data,
                    lambda d, i=i: d["stages"].insert(0, copy.deepcopy(d["stages"][i])),
                    _at(("stages", i + 1, "name")),
                )
            )
    return out


def _unparseable(value: str) -> bool:
    try:
        parse_scalar(value)
    except yaml.YAMLError:
        return True
    return False


def bad_override(data, text, rng):
    """Bad `--set` overrides on the unchanged recipe: unknown key paths, stage or source index out of range, no such
    stage name, no `=`, a value that is not YAML, a wrong type, a path through a scalar, a non-positive number."""
    stages = _stages(data)
    names = [stage["name"] for _, stage in stages]
    cases: list[tuple[str, str]] = []  # (assignment, expected regex)
    set_at = r"^error: --set: "
    for i, stage in stages:
        for ref in (str(i), stage["name"]):
            for key in ("training", "data", "eval", "kind", "reference"):
                for typo in _typos(key)[:4]:
                    if typo not in {f.name for f in dataclasses.fields(schema.StageConfig)}:
                        cases.append((f"stages.{ref}.{typo}=1", _at(("stages", i, typo))))
            for section, key in (("training", "learning_rate"), ("data", "max_rows"), ("eval", "max_prompts")):
                for typo in _typos(key)[:2]:
                    cases.append((f"stages.{ref}.{section}.{typo}=1", _at(("stages", i, section, typo))))
            cases += [
                (f"stages.{ref}.data.max_rows=many", _at(("stages", i, "data", "max_rows"))),
                (f"stages.{ref}.kind=5", _at(("stages", i, "kind"))),
                (f"stages.{ref}.kind=bogus", _at(("stages", i, "kind"))),
                (f"stages.{ref}.data.train=5", _at(("stages", i, "data", "train"))),
                (f"stages.{ref}.eval.max_new_tokens=[1]", _at(("stages", i, "eval", "max_new_tokens"))),
                (
                    f"stages.{ref}.training.per_device_train_batch_size=2.5",
                    _at(("stages", i, "training", "per_device_train_batch_size")),
                ),
                (f"stages.{ref}.data.max_rows=0", _at(("stages", i, "data", "max_rows"))),
                (f"stages.{ref}.training.learning_rate=-1e-4", _at(("stages", i, "training", "learning_rate"))),
                (f"stages.{ref}.data.train.7.path=x.jsonl", set_at + re.escape(f"stages.{ref}.data.train.7: index")),
                (f"stages.{ref}.name.sub=x", set_at + re.escape(f"stages.{ref}.name.sub: ")),
                (f"stages.{ref}.data.kinds=[verbose, vague", set_at + re.escape(f"stages.{ref}.data.kinds: ")),
                (f"stages.{ref}.data.max_rows={{a: ", set_at + re.escape(f"stages.{ref}.data.max_rows: ")),
            ]
    for n in (len(stages), len(stages) + 3, -len(stages) - 1):
        cases.append((f"stages.{n}.name=x", set_at + re.escape(f"stages.{n}: index {n} is out of range")))
    for word in ("warmpu", "final", "stage1", "CONCISE"):
        if word not in names:
            cases.append((f"stages.{word}.loss.beta=0.2", set_at + re.escape(f"stages.{word}: no item named")))
    for top in ("seed", "name", "model", "peft", "training", "stages", "report_to"):
        for typo in _typos(top)[:3]:
            if typo not in {f.name for f in dataclasses.fields(schema.Recipe)}:
                cases.append((f"{typo}=1", _at((typo,))))
    for typo in [t for t in _typos("learning_rate") if t not in config_fields("preference") | config_fields("sft")][:4]:
        cases.append((f"training.{typo}=1e-4", _at(("training", typo))))
    for typo in [t for t in _typos("lora_alpha") if t not in lora_config_fields()][:3]:
        cases.append((f"peft.{typo}=8", _at(("peft", typo))))
    cases.append(("model.nmae=x", _at(("model", "nmae"))))
    for text_value in ("seed", "stages.0.data.max_rows", "learning_rate:1e-4", "name x", "=5", ""):
        cases.append((text_value, set_at + "'" + re.escape(text_value) + "' is not key.path=value"))
    for key in ("seed", "name", "peft.r", "training.learning_rate", "model.name", "report_to"):
        for value in ("[1,", "{a: ", '"unterminated', "'unterminated", "*undefined_alias", "@reserved", "`tick"):
            if _unparseable(value):
                cases.append((f"{key}={value}", set_at + re.escape(f"{key}: ")))
    cases += [
        ("seed=abc", _at(("seed",))),
        ("seed=[1]", _at(("seed",))),
        ("seed=1.5", _at(("seed",))),
        ("peft.r=big", _at(("peft", "r"))),
        ("peft.r=0", _at(("peft", "r"))),
        ("peft.lora_dropout=high", _at(("peft", "lora_dropout"))),
        ("model.trust_remote_code=maybe", _at(("model", "trust_remote_code"))),
        ("model.dtype=float64", _at(("model", "dtype"))),
        ("training.learning_rate=fast", _at(("training", "learning_rate"))),
        ("training.bf16=sure", _at(("training", "bf16"))),
        ("report_to=somewhere", _at(("report_to",))),
        ("stages=5", _at(("stages",))),
        ("stages=[]", _at(("stages",))),
        ("name.x=1", set_at + re.escape("name.x: ")),
        ("seed.sub=1", set_at + re.escape("seed.sub: ")),
    ]
    return [Mutant("bad_override", f"--set {a}", text, expect, [a]) for a, expect in cases]


GENERATORS = {
    "delete_required": delete_required,
    "wrong_type": wrong_type,
    "unknown_key": unknown_key,
    "broken_yaml": broken_yaml,
    "missing_file": missing_file,
    "non_positive": non_positive,
    "empty": empty,
    "duplicate_stage": duplicate_stage,
    "bad_override": bad_override,
}
assert tuple(GENERATORS) == CLASSES


def generate_mutants(recipe: Path, count: int = MUTANTS_PER_RECIPE, seed: int = SEED) -> list[Mutant]:
    """`count` distinct mutants of `recipe`: every class's candidates shuffled (seeded by recipe and `seed`), then
    taken one class at a time in turn, so each class is represented as evenly as its candidates allow."""
    rng = random.Random(f"{recipe.relative_to(RECIPES_DIR)}:{seed}")
    text = recipe.read_text(encoding="utf-8")
    data = _load(text)
    pools = []
    for kind in CLASSES:
        candidates = GENERATORS[kind](data, text, rng)
        rng.shuffle(candidates)
        candidates.sort(key=lambda mutant: mutant.pinned)  # stable: pinned ones last, so popped first
        pools.append(candidates)
    chosen, seen = [], set()
    while len(chosen) < count and any(pools):
        for pool in pools:
            while pool:
                mutant = pool.pop()
                if callable(mutant.text):
                    mutant.text = mutant.text()
                    if mutant.text is None:
                        continue
                identity = (mutant.text, tuple(mutant.overrides))
                if identity not in seen:
                    seen.add(identity)
                    chosen.append(mutant)
                    break
            if len(chosen) == count:
                break
    return chosen


# --- running them -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A scratch root with `data/` linked to the repository's, so `recipes/<folder>/x.yaml` resolves `../../data/`."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "data").symlink_to(REPO / "data", target_is_directory=True)
    return root


def _write(scratch: Path, recipe: Path, name: str, content: str | bytes) -> Path:
    path = scratch / recipe.parent.relative_to(REPO) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _validate(path: Path, overrides: list[str], capsys) -> tuple[object, str, str]:
    """`align validate` in-process: (exit code or the exception that escaped, stdout, stderr). Log records at WARNING
    and Python warnings go to the captured stderr too, as they would on a terminal."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    logging.getLogger().addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                code = main(["validate", str(path), *[arg for a in overrides for arg in ("--set", a)]])
            except BaseException as exc:  # noqa: BLE001 - anything escaping main is a traceback for the user
                code = exc
    finally:
        logging.getLogger().removeHandler(handler)
    out, err = capsys.readouterr()
    err += "".join(f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}\n" for w in caught)
    return code, out, err


def _located(path: Path) -> re.Pattern:
    """An error line that names the file with a line (`FILE:12: `) or a key path (`FILE: stages[0].name: `), or
    `--set` with the key path or the quoted assignment."""
    key = r"[\w\[\].-]+"
    return re.compile(rf"^error: (?:{re.escape(str(path))}(?::\d+: |: {key}: )|--set: (?:{key}: |'))")


def _check(mutant: Mutant, path: Path, code, out: str, err: str) -> str | None:
    """Why this mutant's result is wrong, or None."""
    if isinstance(code, BaseException):
        return f"raised {type(code).__name__}: {code}"
    if code != 2:
        return f"exit {code} (stdout {out.strip()[:200]!r}, stderr {err.strip()[:200]!r})"
    if "Traceback" in out + err:
        return "printed a traceback"
    lines = err.splitlines()
    if not lines:
        return "exit 2 with nothing on stderr"
    located = _located(path)
    for line in lines:
        if not located.match(line):
            return f"stderr line is not a located `error: ` line: {line!r}"
    expect = mutant.expect.replace(re.escape("{path}"), re.escape(str(path)))
    if not re.search(expect, err, re.M):
        return f"no error matches {expect!r}; stderr: {err.strip()[:600]!r}"
    return None


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: str(p.relative_to(RECIPES_DIR)))
def test_generator_makes_200_distinct_mutants_of_every_class_deterministically(recipe):
    """If this fails, the fuzzing below covers fewer than 200 mutants of a recipe, leaves a class of bad input out,
    or differs between runs (a failure could not be reproduced)."""
    mutants = generate_mutants(recipe)
    assert len(mutants) == MUTANTS_PER_RECIPE
    assert {m.kind for m in mutants} == set(CLASSES)
    assert len({(m.text, tuple(m.overrides)) for m in mutants}) == MUTANTS_PER_RECIPE
    assert sum(m.pinned for m in mutants) >= 5  # newline/NUL keys and paths, stages as one mapping
    again = generate_mutants(recipe)
    assert [(m.kind, m.what, m.overrides) for m in again] == [(m.kind, m.what, m.overrides) for m in mutants]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: str(p.relative_to(RECIPES_DIR)))
def test_unmutated_recipe_validates_through_the_harness(recipe, scratch, capsys):
    """The harness itself: the recipe's text and its `safe_dump` round trip, written where mutants are written,
    validate (exit 0). If this fails, mutants would fail for the harness's reasons, not their mutation's."""
    text = recipe.read_text(encoding="utf-8")
    for name, content in (("original.yaml", text), ("dumped.yaml", _dump(_load(text)))):
        path = _write(scratch, recipe, f"{recipe.stem}-{name}", content)
        code, out, err = _validate(path, [], capsys)
        assert code == 0, err
        assert "OK" in out and not err


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: str(p.relative_to(RECIPES_DIR)))
def test_every_mutant_exits_2_with_located_one_line_errors(recipe, scratch, capsys):
    """Every mutant of every shipped recipe (deleted keys, wrong types, unknown keys, broken YAML, missing files,
    non-positive numbers, empty or duplicate stages, bad overrides) must exit 2 and print only `error: ` lines, each
    naming the mutant file with a line or key path (or `--set`), one of them about the mutation itself. If this
    fails, a user's mistake crashes with a traceback, passes validation (to fail later, or train on the wrong
    thing), is reported as an internal failure (exit 1), or is reported without saying where it is."""
    failures = []
    for index, mutant in enumerate(generate_mutants(recipe)):
        path = _write(scratch, recipe, f"{recipe.stem}-{index:03d}-{mutant.kind}.yaml", mutant.text)
        code, out, err = _validate(path, mutant.overrides, capsys)
        why = _check(mutant, path, code, out, err)
        if why:
            failures.append(f"#{index} {mutant.kind} ({mutant.what}): {why}")
    assert not failures, f"{len(failures)} of {MUTANTS_PER_RECIPE} mutants mishandled:\n" + "\n".join(failures[:25])


def test_real_cli_process_prints_no_traceback(scratch):
    """The same as a user runs it: `python -m align validate` in a fresh process (real logging setup, real stderr)
    for a broken-YAML mutant and a bad-override mutant. If this fails, the in-process checks above miss output that
    only the real entry point produces."""
    recipe = RECIPES_DIR / "tiny" / "dpo.yaml"
    mutants = generate_mutants(recipe)
    picks = [next(m for m in mutants if m.kind == kind) for kind in ("broken_yaml", "bad_override")]
    for index, mutant in enumerate(picks):
        path = _write(scratch, recipe, f"cli-{index}-{mutant.kind}.yaml", mutant.text)
        cmd = [sys.executable, "-m", "align", "validate", str(path)]
        for assignment in mutant.overrides:
            cmd += ["--set", assignment]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        assert _check(mutant, path, done.returncode, done.stdout, done.stderr) is None, done.stderr

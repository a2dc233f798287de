"""Normalisers: one raw record, whatever its column names, → a `PreferenceRow` (a `ScoredPrompt` for scored data,
a `CompletionRow` for SFT rows; the `kto` format's `KtoRow` is in `unpaired.py`).

Each format is a function registered by name in `FORMATS`; `detect_format` picks one from a record's columns. Errors
name the file, the line or row, and the field as the user's own file spells it (after column mapping).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from align.data.formats.fields import (
    Fields,
    conversation_row,
    distinct_answers,
    kind_of,
    messages,
    rejected_turns,
    split_messages,
    split_strings,
    string,
    strings,
)
from align.data.formats.readers import Location, Record
from align.data.rows import CompletionRow, PreferenceRow
from align.errors import AlignError, Problem


@dataclass(frozen=True)
class FormatOptions:
    """How to read a source: `columns` maps our field names to the source's (`{"prompt": "question"}`); scored data
    ranks completions by one named score (`score_key`) or a weighted sum of several (`score_weights`)."""

    columns: Mapping[str, str] = field(default_factory=dict)
    score_key: str | None = None
    score_weights: Mapping[str, float] | None = None


@dataclass
class ScoredPrompt:
    """One prompt with two or more completions: `(text, {score name: value})`, e.g. `("...", {"score": 4.0})` or
    `("...", {"helpful": 4.0, "concise": 5.0})`, or `("...", {})` when the data gives answers without scores (the
    pair builder then scores them itself). `labels[i]` keeps completion i's other keys (`{"kind": "verbose"}`).
    `align data build` turns these into preference rows."""

    prompt: str
    completions: list[tuple[str, dict[str, float]]]
    location: str = ""
    meta: dict = field(default_factory=dict)
    source: str = ""
    labels: list[dict] = field(default_factory=list)
    line: int = 0

    @property
    def scored(self) -> bool:
        """Whether the data scored the completions (all of them: a row never mixes scored and unscored answers)."""
        return bool(self.completions) and all(scores for _, scores in self.completions)

    def totals(self, score_key: str | None = None, weights: Mapping[str, float] | None = None) -> list[float]:
        """The one number each completion is ranked by (see `combined_score`)."""
        return [combined_score(scores, score_key, weights) for _, scores in self.completions]


Normaliser = Callable[[dict, Location, FormatOptions], "PreferenceRow | ScoredPrompt"]
# Format name → normaliser, and the field names it reads (what `columns` may map, and what stays out of `meta`).
FORMATS: dict[str, Normaliser] = {}
FIELDS: dict[str, tuple[str, ...]] = {}


def register_format(name: str, fields: tuple[str, ...] = ("prompt", "chosen", "rejected")):
    """Decorator: register a normaliser under `name`, reading `fields` (our names, before column mapping)."""

    def decorate(normaliser: Normaliser) -> Normaliser:
        FORMATS[name] = normaliser
        FIELDS[name] = tuple(fields)
        return normaliser

    return decorate


def combined_score(scores: Mapping[str, float], score_key: str | None = None, weights=None) -> float:
    """`Σ weight·score` with `weights`, else `scores[score_key]`, else the only score; ValueError when ambiguous."""
    if weights:
        missing = [name for name in weights if name not in scores]
        if missing:
            raise ValueError(f"has no score {missing[0]!r} (score_weights needs {', '.join(weights)})")
        return float(sum(float(w) * scores[name] for name, w in weights.items()))
    if score_key is not None:
        if score_key not in scores:
            raise ValueError(f"has no score {score_key!r} (score_key); scores here: {', '.join(scores)}")
        return scores[score_key]
    if len(scores) != 1:
        raise ValueError(f"has several scores ({', '.join(scores)}); pick one with score_key or weigh them")
    return next(iter(scores.values()))


def _fields(data: dict, where: Location, options: FormatOptions | None, name: str) -> Fields:
    return Fields(data, where, dict((options or FormatOptions()).columns), FIELDS[name])


@register_format("standard")
def normalise_standard(data: dict, where: Location, options: FormatOptions | None = None) -> PreferenceRow:
    """`prompt`, `chosen` strings and `rejected`, a string or a list of K strings (K negatives)."""
    row = _fields(data, where, options, "standard")
    need = "standard rows need prompt, chosen and rejected strings"
    prompt = string(row.get("prompt", need), row, row.key("prompt"))
    chosen = string(row.get("chosen", need), row, row.key("chosen"))
    rejected = strings(row.get("rejected", need), row, row.key("rejected"))
    distinct_answers(chosen, rejected, row)
    return PreferenceRow(prompt, chosen, rejected, source=where.source, line=where.number, meta=row.meta())


@register_format("conversational")
def normalise_conversational(data: dict, where: Location, options: FormatOptions | None = None) -> PreferenceRow:
    """`prompt` (a string or `{role, content}` messages); `chosen` and `rejected` message lists (or K of them).

    A single user turn answered by a single assistant turn becomes plain strings; longer conversations also keep the
    messages in `meta["messages"]`.
    """
    row = _fields(data, where, options, "conversational")
    need = "conversational rows need prompt, chosen and rejected"
    prompt_value = row.get("prompt", need)
    if isinstance(prompt_value, str):
        prompt = [{"role": "user", "content": string(prompt_value, row, row.key("prompt"))}]
    else:
        prompt = messages(prompt_value, row, row.key("prompt"))
    chosen = messages(row.get("chosen", need), row, row.key("chosen"), answer=True)
    rejected = rejected_turns(row.get("rejected", need), row, row.key("rejected"))
    return conversation_row(prompt, chosen, rejected, row)


@register_format("implicit_prompt", fields=("chosen", "rejected"))
def normalise_implicit_prompt(data: dict, where: Location, options: FormatOptions | None = None) -> PreferenceRow:
    """Only full `chosen` and `rejected` transcripts (strings, or message lists); the prompt is their shared start."""
    row = _fields(data, where, options, "implicit_prompt")
    need = "implicit-prompt rows need chosen and rejected transcripts"
    chosen, rejected = row.get("chosen", need), row.get("rejected", need)
    if isinstance(chosen, str):
        return split_strings(chosen, rejected, row)
    if isinstance(chosen, list):
        return split_messages(chosen, rejected, row)
    message = f"must be a transcript string or a list of messages, got {kind_of(chosen)}"
    raise row.fail(row.key("chosen"), message, "wrong_type")


def _number(value, row: Fields, key: str) -> float:
    # bool is an int subclass, but `true` as a score is a data mistake, not 1.0.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise row.fail(key, f"must be a finite number, got {kind_of(value)} {value!r}", "wrong_type")
    return float(value)


def _completion(item, row: Fields, key: str) -> tuple[str, dict[str, float], dict]:
    """One completion: a plain string (unscored), `{"text"}`, `{"text", "score"}` or `{"text", "scores": {...}}`;
    other keys of the object (`kind`, `model`...) come back as its labels."""
    if isinstance(item, str):
        return string(item, row, key), {}, {}
    if not isinstance(item, dict):
        message = f'must be a string or an object like {{"text": ..., "score": 4}}, got {kind_of(item)}'
        raise row.fail(key, message, "wrong_type")
    if "text" not in item:
        raise row.fail(f"{key}.text", "missing field", "missing_field")
    text = string(item["text"], row, f"{key}.text")
    # Arrow-backed sources (Parquet, datasets) give every struct all keys seen anywhere, absent ones as None.
    score, named = item.get("score"), item.get("scores")
    labels = {k: v for k, v in item.items() if k not in ("text", "score", "scores") and v is not None}
    if score is not None and named is not None:
        raise row.fail(key, "give one of `score` (a number) or `scores` (an object of named numbers), not both")
    if score is not None:
        return text, {"score": _number(score, row, f"{key}.score")}, labels
    if named is None:
        return text, {}, labels
    if not isinstance(named, dict) or not any(v is not None for v in named.values()):
        message = f"must be a non-empty object of named numbers, got {kind_of(named)}"
        raise row.fail(f"{key}.scores", message, "wrong_type")
    scores = {name: _number(v, row, f"{key}.scores.{name}") for name, v in named.items() if v is not None}
    return text, scores, labels


def _check_scores(completions: list, row: Fields, key: str, options: FormatOptions) -> None:
    """Every completion must yield one ranking number, and without options they must all use the same score name;
    or none is scored at all (answers the pair builder scores itself)."""
    unscored = [index for index, (_, scores) in enumerate(completions) if not scores]
    if len(unscored) == len(completions):
        return
    if unscored:
        message = "has no score while other completions of this row do; score every completion or none"
        raise row.fail(f"{key}[{unscored[0]}]", message)
    for index, (_, scores) in enumerate(completions):
        try:
            combined_score(scores, options.score_key, options.score_weights)
        except ValueError as exc:
            raise row.fail(f"{key}[{index}]", str(exc)) from None
    names = {tuple(scores) for _, scores in completions}
    if not options.score_key and not options.score_weights and len(names) > 1:
        found = ", ".join(sorted(name for group in names for name in group))
        raise row.fail(key, f"completions use different score names ({found}); pick one with score_key")


@register_format("scored", fields=("prompt", "completions"))
def normalise_scored(data: dict, where: Location, options: FormatOptions | None = None) -> ScoredPrompt:
    """`prompt` and `completions`: a list of two or more `{"text", "score"}` / `{"text", "scores": {...}}` objects,
    or of unscored answers (strings or `{"text"}` objects) for the pair builder to score."""
    options = options or FormatOptions()
    if options.score_key and options.score_weights:
        raise AlignError(where.problem("give score_key or score_weights, not both", "score_key"))
    row = _fields(data, where, options, "scored")
    need = "scored rows need prompt and completions"
    prompt = string(row.get("prompt", need), row, row.key("prompt"))
    items, key = row.get("completions", need), row.key("completions")
    if not isinstance(items, list):
        raise row.fail(key, f"must be a list of {{text, score}} objects, got {kind_of(items)}", "wrong_type")
    if len(items) < 2:
        raise row.fail(key, f"has {len(items)} completion(s); a scored row needs at least 2 to make a pair")
    parsed = [_completion(item, row, f"{key}[{i}]") for i, item in enumerate(items)]
    completions = [(text, scores) for text, scores, _ in parsed]
    _check_scores(completions, row, key, options)
    labels = [labels for _, _, labels in parsed]
    return ScoredPrompt(prompt, completions, str(where), row.meta(), where.source, labels, where.number)


@register_format("completion", fields=("prompt", "completion"))
def normalise_completion(data: dict, where: Location, options: FormatOptions | None = None) -> CompletionRow:
    """SFT rows: `prompt` and `completion` strings; without a `completion` column, `chosen` is the completion (so a
    preference file can feed an SFT warm-up), and `rejected` is then ignored."""
    options = options or FormatOptions()
    columns = dict(options.columns)
    if "completion" not in columns and "completion" not in data and "chosen" in data:
        columns["completion"] = "chosen"
    row = Fields(data, where, columns, ("prompt", "completion", "rejected"))
    need = "SFT rows need prompt and completion (or chosen) strings"
    prompt = string(row.get("prompt", need), row, row.key("prompt"))
    completion = string(row.get("completion", need), row, row.key("completion"))
    return CompletionRow(prompt, completion, source=where.source, line=where.number, meta=row.meta())


def _is_list(value) -> bool:
    return isinstance(value, list)


def detect_format(record: Record | dict, columns: Mapping[str, str] | None = None) -> str:
    """The format a record's columns (after `columns` mapping) suggest; AlignError when none fits.

    prompt+chosen+rejected is `conversational` when the prompt or chosen is a list (messages), else `standard`;
    chosen+rejected without a prompt is `implicit_prompt`; prompt+completions is `scored`; prompt+completion+label is
    `kto` (unpaired feedback); prompt+completion is `completion` (SFT rows).
    """
    data = record.data if isinstance(record, Record) else record
    columns = dict(columns or {})

    def has(name: str) -> bool:
        return columns.get(name, name) in data

    if has("chosen") and has("rejected"):
        if not has("prompt"):
            return "implicit_prompt"
        chosen, prompt = data[columns.get("chosen", "chosen")], data[columns.get("prompt", "prompt")]
        return "conversational" if _is_list(chosen) or _is_list(prompt) else "standard"
    if has("completions"):
        return "scored"
    if has("prompt") and has("completion"):
        return "kto" if has("label") else "completion"
    message = (
        f"cannot tell the data format from its columns ({', '.join(map(str, data)) or 'none'}); expected prompt, "
        "chosen, rejected (standard/conversational), chosen, rejected (implicit_prompt), prompt, completions "
        "(scored), prompt, completion, label (kto) or prompt, completion (completion, for SFT); name the format, "
        "and map other column names with `columns`"
    )
    raise AlignError(record.where.problem(message) if isinstance(record, Record) else Problem("record", message))

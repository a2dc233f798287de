"""What the normalisers share: reading fields through a column mapping, and checking strings, K answers, chat
messages and full transcripts, with errors that name the field as the user's file spells it."""

from __future__ import annotations

import os

from align.data.formats.readers import Location
from align.data.rows import PreferenceRow
from align.errors import AlignError

ROLES = ("system", "user", "assistant", "tool")


def kind_of(value) -> str:
    """A type name for messages; CSV/Parquet gaps arrive as None, which users know as an empty cell or null."""
    name = type(value).__name__
    return "null" if value is None else {"dict": "object", "str": "string"}.get(name, name)


class Fields:
    """A record's data seen through a column mapping: `get("prompt")` reads the source's own column."""

    def __init__(self, data: dict, where: Location, columns: dict[str, str], fields: tuple[str, ...]):
        self.data, self.where, self.columns, self.fields = data, where, columns, fields
        for ours, theirs in columns.items():
            if theirs not in data:
                available = ", ".join(map(str, data)) or "none"
                message = f"no such column (mapped from {ours!r}); columns here: {available}"
                raise AlignError(where.problem(message, theirs, "missing_field"))

    def key(self, name: str) -> str:
        """The source's column name for our field `name`."""
        return self.columns.get(name, name)

    def get(self, name: str, need: str):
        """The value of our field `name`; a missing column is an error that says what this format needs."""
        column = self.key(name)
        if column not in self.data:
            available = ", ".join(map(str, self.data)) or "none"
            message = f"missing field; {need} (columns here: {available}; map others with `columns`)"
            raise self.fail(column, message, "missing_field")
        return self.data[column]

    def fail(self, key: str, message: str, code: str = "invalid") -> AlignError:
        """The error for field `key` of this row; `code` classifies it (see `align.data.issues.PROBLEM_KINDS`)."""
        return AlignError(self.where.problem(message, key, code))

    def meta(self) -> dict:
        """The columns this format does not read, kept under the source's names (for filtering by `kind` etc.)."""
        used = {self.key(name) for name in self.fields}
        return {k: v for k, v in self.data.items() if k not in used}


def string(value, row: Fields, key: str) -> str:
    """A non-blank string."""
    if not isinstance(value, str):
        code = "empty_field" if value is None else "wrong_type"
        raise row.fail(key, f"must be a string, got {kind_of(value)}", code)
    if not value.strip():
        raise row.fail(key, "is empty", "empty_field")
    return value


def strings(value, row: Fields, key: str) -> str | list[str]:
    """A string, or a non-empty list of strings (K negatives)."""
    if isinstance(value, list):
        if not value:
            raise row.fail(key, "is an empty list; give one or more rejected answers", "empty_field")
        return [string(item, row, f"{key}[{i}]") for i, item in enumerate(value)]
    if not isinstance(value, str):
        code = "empty_field" if value is None else "wrong_type"
        raise row.fail(key, f"must be a string or a list of strings, got {kind_of(value)}", code)
    return string(value, row, key)


def distinct_answers(chosen: str, rejected: str | list[str], row: Fields) -> None:
    for answer in [rejected] if isinstance(rejected, str) else rejected:
        if chosen.strip() == answer.strip():
            raise row.fail(
                row.key("chosen"), "chosen and rejected are identical: the pair teaches nothing", "identical"
            )


def _message(item, row: Fields, key: str) -> dict:
    if not isinstance(item, dict):
        message = f'must be a message like {{"role": "user", "content": "..."}}, got {kind_of(item)}'
        raise row.fail(key, message, "wrong_type")
    if item.get("role") not in ROLES:
        raise row.fail(f"{key}.role", f"must be one of {', '.join(ROLES)}, got {item.get('role')!r}")
    string(item.get("content"), row, f"{key}.content")
    # Arrow-backed sources give every message all keys seen in the column, absent ones as None; drop those.
    return {k: v for k, v in item.items() if v is not None}


def messages(value, row: Fields, key: str, answer: bool = False) -> list[dict]:
    """A non-empty list of `{role, content}` messages; an `answer` must start with the assistant's turn."""
    if not isinstance(value, list) or not value:
        code = "empty_field" if value in (None, []) else "wrong_type"
        raise row.fail(key, f"must be a non-empty list of {{role, content}} messages, got {kind_of(value)}", code)
    checked = [_message(item, row, f"{key}[{i}]") for i, item in enumerate(value)]
    if answer and checked[0]["role"] != "assistant":
        raise row.fail(f"{key}[0].role", f"an answer must start with an assistant message, got {checked[0]['role']!r}")
    return checked


def is_k_lists(value) -> bool:
    """K answers given as a list of message lists (rather than one message list)."""
    return isinstance(value, list) and bool(value) and all(isinstance(item, list) for item in value)


def rejected_turns(value, row: Fields, key: str, answer: bool = True) -> list[dict] | list[list[dict]]:
    """One rejected answer (a message list) or K of them (a list of message lists)."""
    if is_k_lists(value):
        return [messages(item, row, f"{key}[{i}]", answer) for i, item in enumerate(value)]
    return messages(value, row, key, answer)


def flatten_turns(turns: list[dict]) -> str:
    """Messages as one string, for the row's plain-text fields (prompt grouping, models without a chat template)."""
    if len(turns) == 1:
        return turns[0]["content"]
    return "\n\n".join(f"{turn['role']}: {turn['content']}" for turn in turns)


def is_plain_turn(turns: list[dict], role: str) -> bool:
    """One message from `role` with nothing but its content: plain strings keep all of it."""
    return len(turns) == 1 and turns[0]["role"] == role and set(turns[0]) == {"role", "content"}


def conversation_row(prompt: list[dict], chosen: list[dict], rejected: list, row: Fields) -> PreferenceRow:
    """A row from checked messages; anything beyond one plain user turn and one plain assistant answer keeps the
    full messages in `meta["messages"]`, since the plain strings alone would lose turns, roles or extra keys."""
    k_negatives = is_k_lists(rejected)
    negatives = rejected if k_negatives else [rejected]
    texts = [flatten_turns(turns) for turns in negatives]
    chosen_text = flatten_turns(chosen)
    distinct_answers(chosen_text, texts, row)
    meta = row.meta()
    if not (is_plain_turn(prompt, "user") and all(is_plain_turn(turns, "assistant") for turns in [chosen, *negatives])):
        meta["messages"] = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    answers = texts if k_negatives else texts[0]
    where = row.where
    return PreferenceRow(flatten_turns(prompt), chosen_text, answers, source=where.source, line=where.number, meta=meta)


def _transcript_key(row: Fields, index: int, k_negatives: bool) -> str:
    """The field holding transcript `index` (0 = chosen, then the rejected ones)."""
    if index == 0:
        return row.key("chosen")
    return f"{row.key('rejected')}[{index - 1}]" if k_negatives else row.key("rejected")


def split_strings(chosen: str, rejected, row: Fields) -> PreferenceRow:
    """Prompt = the transcripts' longest common prefix, cut back to its last whitespace so no word is split."""
    chosen = string(chosen, row, row.key("chosen"))
    negatives = strings(rejected, row, row.key("rejected"))
    transcripts = [chosen, *([negatives] if isinstance(negatives, str) else negatives)]
    shared = os.path.commonprefix(transcripts)
    for index, text in enumerate(transcripts):
        if text == shared:
            key = _transcript_key(row, index, not isinstance(negatives, str))
            raise row.fail(key, "is a prefix of the other transcript, so there is no answer left to compare")
    cut = max((i for i, ch in enumerate(shared) if ch.isspace()), default=-1) + 1
    prompt = shared[:cut]
    if not prompt.strip():
        raise row.fail(row.key("chosen"), "shares no prompt with rejected (no common start up to a word boundary)")
    answers = [text[cut:] for text in transcripts]
    rejected_out = answers[1] if isinstance(negatives, str) else answers[1:]
    where = row.where
    return PreferenceRow(prompt, answers[0], rejected_out, source=where.source, line=where.number, meta=row.meta())


def split_messages(chosen: list, rejected, row: Fields) -> PreferenceRow:
    """Prompt = the leading messages all transcripts share; what follows must be the assistant's answer."""
    chosen = messages(chosen, row, row.key("chosen"))
    given = rejected_turns(rejected, row, row.key("rejected"), answer=False)
    negatives = given if is_k_lists(given) else [given]
    transcripts = [chosen, *negatives]
    shared = 0
    while all(len(t) > shared and t[shared] == chosen[shared] for t in transcripts):
        shared += 1
    for index, turns in enumerate(transcripts):
        if len(turns) == shared:
            key = _transcript_key(row, index, is_k_lists(given))
            raise row.fail(key, "is a prefix of the other transcript, so there is no answer left to compare")
    if shared == 0:
        raise row.fail(row.key("chosen"), "shares no leading messages with rejected, so there is no prompt")
    for index, turns in enumerate(transcripts):
        if turns[shared]["role"] != "assistant":
            key = _transcript_key(row, index, is_k_lists(given))
            message = f"the transcripts first differ at a {turns[shared]['role']!r} message; they must differ in the "
            raise row.fail(f"{key}[{shared}]", message + "assistant's answer")
    answers = [turns[shared:] for turns in negatives]
    return conversation_row(chosen[:shared], chosen[shared:], answers if is_k_lists(given) else answers[0], row)

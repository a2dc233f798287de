"""The `kto` format: unpaired feedback, one answer per row with a verdict on it — `prompt`, `completion` and a
`label` (true = desirable, false = undesirable) — normalised to `KtoRow`s. trl's unpaired preference format, plain
strings or message lists (conversational)."""

from __future__ import annotations

from align.data.formats.fields import Fields, flatten_turns, is_plain_turn, kind_of, messages, string
from align.data.formats.normalise import FormatOptions, register_format
from align.data.formats.readers import Location
from align.data.rows import KtoRow

# A label is a yes/no verdict; these are its only spellings. Text forms exist because CSV cells are always text.
LABEL_WORDS = {"true": True, "false": False, "1": True, "0": False}


def parse_label(value, row: Fields, key: str) -> bool:
    """True or False from a JSON/Parquet boolean, the integers 1/0, or the text "true"/"false"/"1"/"0" (any case).

    Anything else (`yes`, 2, 0.5, a list) is refused rather than guessed: a misread label trains the model towards
    the answers it should move away from.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in LABEL_WORDS:
        return LABEL_WORDS[value.strip().lower()]
    blank = value is None or (isinstance(value, str) and not value.strip())
    message = f"must be true (desirable) or false (undesirable), or 1/0; got {kind_of(value)} {value!r}"
    raise row.fail(key, message, "empty_field" if blank else "wrong_type")


def _turns(value, row: Fields, key: str, role: str) -> list[dict]:
    """A string as one `role` message, or a checked message list (an answer must open with the assistant)."""
    if isinstance(value, str):
        return [{"role": role, "content": string(value, row, key)}]
    if not isinstance(value, list):
        code = "empty_field" if value is None else "wrong_type"
        raise row.fail(key, f"must be a string or a list of {{role, content}} messages, got {kind_of(value)}", code)
    return messages(value, row, key, answer=role == "assistant")


@register_format("kto", fields=("prompt", "completion", "label"))
def normalise_kto(data: dict, where: Location, options: FormatOptions | None = None) -> KtoRow:
    """`prompt` and `completion` (strings, or `{role, content}` message lists) and a `label` (see `parse_label`).

    A single user turn answered by a single assistant turn becomes plain strings; longer conversations also keep the
    messages in `meta["messages"]`.
    """
    row = Fields(data, where, dict((options or FormatOptions()).columns), ("prompt", "completion", "label"))
    need = "KTO rows need prompt, completion and label (true = desirable, false = undesirable)"
    prompt = _turns(row.get("prompt", need), row, row.key("prompt"), "user")
    completion = _turns(row.get("completion", need), row, row.key("completion"), "assistant")
    label = parse_label(row.get("label", need), row, row.key("label"))
    meta = row.meta()
    if not (is_plain_turn(prompt, "user") and is_plain_turn(completion, "assistant")):
        meta["messages"] = {"prompt": prompt, "completion": completion}
    text = flatten_turns(prompt), flatten_turns(completion)
    return KtoRow(*text, label, source=where.source, line=where.number, meta=meta)

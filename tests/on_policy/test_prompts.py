"""Prompt files of on-policy stages: fields, column mapping, repeats, limits and one-line errors."""

import json

import pytest

from align.errors import AlignError
from align.on_policy.prompts import load_prompt_rows


def _jsonl(tmp_path, rows) -> str:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_fields_columns_and_repeats(tmp_path):
    """`completion` mapped to `reference`, key points kept as a tuple, a repeated prompt read once, `limit` counts
    distinct prompts. If this fails, a mapped reference is lost (no word budget) or a prompt is sampled twice."""
    path = _jsonl(
        tmp_path,
        [
            {"prompt": "Fix a leak?", "completion": "Shut the valve.", "key_points": ["shut the valve"]},
            {"prompt": "Fix a leak?", "completion": "Again."},
            {"prompt": "Boil eggs?"},
            {"prompt": "Third?"},
        ],
    )
    rows = load_prompt_rows(path, {"reference": "completion"}, limit=2)
    assert [(r.prompt, r.reference, r.key_points) for r in rows] == [
        ("Fix a leak?", "Shut the valve.", ("shut the valve",)),
        ("Boil eggs?", None, None),
    ]
    assert rows[0].location.endswith("prompts.jsonl:1")


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"prompt": "  "}, "prompt"),
        ({"prompt": "a", "key_points": "one"}, "key_points"),
        ({"prompt": "a", "reference": 3}, "reference"),
    ],
)
def test_bad_rows_name_line_and_field(tmp_path, row, field):
    """A blank prompt, key points that are not a list of strings, a non-string reference: one error naming the
    file, line 2 and the field. If this fails, bad prompt files are sampled anyway or crash with a traceback."""
    path = _jsonl(tmp_path, [{"prompt": "ok"}, row])
    with pytest.raises(AlignError) as caught:
        load_prompt_rows(path)
    assert "prompts.jsonl:2" in str(caught.value) and field in str(caught.value)


def test_an_empty_file_is_an_error(tmp_path):
    """No prompts at all is an error, not a stage with nothing to train."""
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n")
    with pytest.raises(AlignError, match="has no prompts"):
        load_prompt_rows(str(path))

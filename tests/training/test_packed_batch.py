"""`PackedBatch`, the packed collator's contract: built from a batch dict in one place, strict about its keys."""

import re
from dataclasses import fields

import pytest
import torch

from align.training.packed_batch import CARRIED_COLUMNS, PackedBatch, is_packed
from align.training.packing import PackedPreferenceCollator, pack_rows

ROWS = [
    [([1, 2, 3, 4], [0, 0, 1, 1]), ([1, 2, 3, 5], [0, 0, 1, 1])],
    [([7, 8], [0, 1]), ([7, 9, 9], [0, 1, 1])],
]


def test_the_dict_round_trip_keeps_every_tensor():
    """`to_inputs` → `from_inputs` gives back the same tensors (the very objects): if this fails, a field is lost or
    renamed on its way through the trainer's data loader."""
    packed = pack_rows(ROWS)
    back = PackedBatch.from_inputs(packed.to_inputs())
    for field in fields(PackedBatch):
        assert getattr(back, field.name) is getattr(packed, field.name), field.name
    assert back.rows == 2 and is_packed(packed.to_inputs())


def test_a_missing_or_unknown_key_is_an_error():
    """A batch dict without a packed field, or with a key nobody reads, is refused naming the key: if this fails, a
    renamed or misspelt key would be silently ignored (or read as absent) instead of stopping the step."""
    inputs = pack_rows(ROWS).to_inputs()
    without = {key: value for key, value in inputs.items() if key != "target_rank"}
    with pytest.raises(ValueError, match="missing \\['target_rank'\\]"):
        PackedBatch.from_inputs(without)
    with pytest.raises(ValueError, match="unknown \\['target_indx'\\]"):
        PackedBatch.from_inputs(inputs | {"target_indx": torch.tensor([0])})


def test_trls_carried_columns_are_allowed_beside_the_packed_tensors():
    """The collator carries trl's precomputed reference log-probs under trl's names; reading the packed tensors must
    accept them. If this fails, precomputed-reference runs in the packed layout stop at their first step."""
    examples = [
        {"prompt_ids": [1, 2], "chosen_ids": [3, 4], "rejected_ids": [3, 5], "ref_chosen_logps": -1.0},
        {"prompt_ids": [7], "chosen_ids": [8], "rejected_ids": [9, 9], "ref_chosen_logps": -2.0},
    ]
    for example in examples:
        example["ref_rejected_logps"] = -3.0
    inputs = PackedPreferenceCollator()(examples)
    assert set(CARRIED_COLUMNS) <= set(inputs)
    assert PackedBatch.from_inputs(inputs).segment_lengths.tolist() == [5, 4]


def test_select_rows_is_what_pack_rows_builds_from_those_rows():
    """Row 1 of the hand-packed batch, selected, equals `pack_rows` of row 1 alone, field by field: if this fails,
    micro-batches score tokens at shifted positions or attribute them to the wrong sequences."""
    selected = pack_rows(ROWS).select_rows(1, 2)
    alone = pack_rows(ROWS[1:])
    for field in fields(PackedBatch):
        assert torch.equal(getattr(selected, field.name), getattr(alone, field.name)), field.name


def test_sequences_unpack_to_trls_order():
    """By hand: chosen₀ 1 2 3 4, chosen₁ 7 8, rejected₀ 1 2 3 5, rejected₁ 7 9 9 (B chosen, then B rejected). If
    this fails, row fingerprints (which processes trained on which rows) are computed from the wrong tokens."""
    sequences = [ids.tolist() for ids in pack_rows(ROWS).sequences()]
    assert sequences == [[1, 2, 3, 4], [7, 8], [1, 2, 3, 5], [7, 9, 9]]


def test_no_packed_key_is_spelt_outside_the_module_that_defines_it():
    """The packed-only field names never appear as string literals in align/ or scripts/ outside packed_batch.py:
    every reader goes through `PackedBatch`. If this fails, a reader indexes the batch dict by name again and a
    renamed field would break it at run time instead of at the attribute."""
    from tests.conftest import REPO

    shared_with_padded = {"input_ids", "position_ids", "rejected_per_prompt"}  # trl's padded batch has them too
    names = {field.name for field in fields(PackedBatch)} - shared_with_padded
    pattern = re.compile(r"""["'](%s)["']""" % "|".join(sorted(names)))
    offenders = [
        f"{path.relative_to(REPO)}: {match.group(1)}"
        for folder in ("align", "scripts")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path.name != "packed_batch.py"
        for match in pattern.finditer(path.read_text())
    ]
    assert offenders == []

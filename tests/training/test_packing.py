"""The packed, prefix-shared layout: layout by hand, and log-probs/gradients equal to trl's padded layout."""

import copy

import pytest
import torch

from align.models import load_model
from align.training.logprobs import add_completion_logps, shared_prefix_logps
from align.training.multi_negative import MultiNegativeCollator
from align.training.packed_batch import PackedBatch
from align.training.packing import (
    PackedCompletionCollator,
    PackedPreferenceCollator,
    common_prefix,
    pack_rows,
    split_packed,
)
from align.training.segment_attention import PairSegments, use_segment_attention
from align.training.sharding import row_fingerprints


def test_pack_rows_by_hand():
    """Row 0: prompt [1 2], chosen [3 4], rejected [3 5] → shared [1 2 3] (the answers' first token too), own parts
    [4] and [5]. Row 1: prompt [7], chosen [8], rejected [9 9].

    Packed: 1 2 3 | 4 | 5 || 7 | 8 | 9 9; chosen₀ scores 3 (from packed position 1) and 4 (from 2); rejected₀ scores
    3 (from 1) and 5 (from 2): both read the one shared hidden state. If this fails, tokens are scored from the wrong
    positions and every packed loss is wrong.
    """
    rows = [
        [([1, 2, 3, 4], [0, 0, 1, 1]), ([1, 2, 3, 5], [0, 0, 1, 1])],
        [([7, 8], [0, 1]), ([7, 9, 9], [0, 1, 1])],
    ]
    out = pack_rows(rows)
    assert out.input_ids.tolist() == [[1, 2, 3, 4, 5, 7, 8, 9, 9]]
    assert out.position_ids.tolist() == [[0, 1, 2, 3, 3, 0, 1, 1, 2]]
    assert out.token_part.tolist() == [0, 0, 0, 1, 2, 0, 1, 2, 2]
    assert out.segment_lengths.tolist() == [5, 4]
    # sequences in trl order: chosen₀, chosen₁, rejected₀, rejected₁
    assert out.target_sequence.tolist() == [0, 0, 2, 2, 1, 3, 3]
    assert out.target_index.tolist() == [1, 2, 1, 2, 5, 5, 7]
    assert out.target_ids.tolist() == [3, 4, 3, 5, 8, 9, 9]
    assert out.target_rank.tolist() == [0, 1, 0, 1, 0, 0, 1]
    assert out.sequence_lengths.tolist() == [4, 2, 4, 3]


def test_sft_rows_pack_by_hand():
    """SFT rows (trl's `input_ids` and `labels`, -100 = not trained): [1 2 3 4] with labels on 3 4, [5 6 7] with
    labels on every token. Packed: 1 2 3 4 | 5 6 7, positions restarting per row, each row one causal segment;
    scored: 3 (from 1), 4 (from 2), 6 (from 4), 7 (from 5) — a row's first token is never scored, as trl's shifted
    labels never score it. If this fails, the SFT loss reads the wrong tokens or rows see each other."""
    batch = PackedCompletionCollator()(
        [{"input_ids": [1, 2, 3, 4], "labels": [-100, -100, 3, 4]}, {"input_ids": [5, 6, 7], "labels": [5, 6, 7]}]
    )
    out = PackedBatch.from_inputs(batch)
    assert out.input_ids.tolist() == [[1, 2, 3, 4, 5, 6, 7]]
    assert out.position_ids.tolist() == [[0, 1, 2, 3, 0, 1, 2]]
    assert out.segment_lengths.tolist() == [4, 3] and out.token_part.tolist() == [0] * 7
    assert out.target_index.tolist() == [1, 2, 4, 5]
    assert out.target_ids.tolist() == [3, 4, 6, 7]
    assert out.target_sequence.tolist() == [0, 0, 1, 1]
    assert [
        (call.query, call.keys, call.mask) for call in PairSegments.build(out.segment_lengths, out.token_part).calls
    ] == [
        ((0, 4), [(0, 4)], None),
        ((4, 7), [(4, 7)], None),
    ]
    with pytest.raises(ValueError, match="labels differ"):
        PackedCompletionCollator()([{"input_ids": [1, 2], "labels": [-100, 9]}])


def test_segment_calls_by_hand():
    """Row parts 0 0 1 2 2 (shared 2 tokens, chosen 1, rejected 2): one causal call over shared + chosen (packed
    0..3); the rejected tokens (3..5) attend to the shared keys and causally to themselves, never to the chosen token.
    If this fails, answers leak into each other and log-probs differ from separate sequences."""
    segments = PairSegments.build(torch.tensor([5, 2]), torch.tensor([0, 0, 1, 2, 2, 0, 1]))
    first, second, third = segments.calls
    assert (first.query, first.keys, first.mask) == ((0, 3), [(0, 3)], None)
    assert (second.query, second.keys) == ((3, 5), [(0, 2), (3, 5)])
    assert second.mask.int().tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert (third.query, third.keys, third.mask) == ((5, 7), [(5, 7)], None)


def test_common_prefix():
    """If this fails, the shared part takes tokens the answers do not share (or misses ones they do)."""
    assert common_prefix([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert common_prefix([[5], [6]]) == 0
    assert common_prefix([[1, 2], [1, 2]]) == 2


def _examples(vocab: int, k: int, seed: int = 0) -> list[dict]:
    """Rows with shared answer openings, an answer that is a prefix of another, and ragged lengths."""
    g = torch.Generator().manual_seed(seed)

    def ids(n):
        return torch.randint(5, vocab, (n,), generator=g).tolist()

    rows = []
    for length in (5, 9, 3):
        prompt, opening = ids(length), ids(2)
        chosen = opening + ids(length + 2)
        rejected = [opening + ids(length + j) for j in range(k)] if k > 1 else opening + ids(4)
        rows.append({"prompt_ids": prompt, "chosen_ids": chosen, "rejected_ids": rejected})
    rows.append({"prompt_ids": ids(4), "chosen_ids": [9, 9, 9], "rejected_ids": [[9, 9]] * k if k > 1 else [9, 9]})
    return rows


def _logps(model, batch, packed: bool):
    if packed:
        layout = PackedBatch.from_inputs(batch)
        return model(input_ids=layout.input_ids, position_ids=layout.position_ids, completion_logps=True, packed=layout)
    return model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        completion_mask=batch["completion_mask"],
        completion_logps=True,
    )


@pytest.mark.parametrize(
    ("k", "max_length", "truncation_mode"),
    [(1, None, "keep_start"), (3, None, "keep_start"), (1, 12, "keep_start"), (1, 12, "keep_end")],
)
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_logps_and_gradients_equal_padded(tiny_model_dir, k, max_length, truncation_mode, attention):
    """Same rows through trl's padded layout and the packed one: per-sequence log-probs, scored-token counts, shared
    prefix sums and every parameter gradient agree within 1e-5 — with K = 3 negatives, and with truncation keeping
    the start (prompts still shared) or the end (prompts cut differently, so less is shared).

    If this fails, packing changes what the model learns instead of only how fast.
    """
    torch.manual_seed(0)
    padded_model = load_model(str(tiny_model_dir), dtype="float32")
    padded_model.config._attn_implementation = attention
    packed_model = copy.deepcopy(padded_model)
    add_completion_logps(padded_model, chunk_tokens=5)
    add_completion_logps(packed_model, chunk_tokens=5)
    use_segment_attention(packed_model)
    examples = _examples(padded_model.config.vocab_size, k)
    padded_batch = MultiNegativeCollator(pad_token_id=0, max_length=max_length, truncation_mode=truncation_mode)(
        examples
    )
    packed_batch = PackedPreferenceCollator(max_length=max_length, truncation_mode=truncation_mode)(examples)
    assert PackedBatch.from_inputs(packed_batch).input_ids.numel() < int(padded_batch["attention_mask"].sum())

    padded, packed = _logps(padded_model, padded_batch, False), _logps(packed_model, packed_batch, True)
    assert torch.allclose(packed.logps, padded.logps, atol=1e-5)
    assert packed.lengths.tolist() == padded.lengths.tolist()
    if k == 1:
        packed_shared = shared_prefix_logps(packed.per_token, packed.mask)
        padded_shared = shared_prefix_logps(padded.per_token, padded.mask)
        for a, b in zip(packed_shared, padded_shared, strict=True):
            assert torch.allclose(a, b, atol=1e-5)
    weights = torch.linspace(0.5, 1.5, padded.logps.numel())
    (padded.logps * weights).sum().backward()
    (packed.logps * weights).sum().backward()
    for (name, p), (_, q) in zip(padded_model.named_parameters(), packed_model.named_parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name
    assert row_fingerprints(packed_batch) == row_fingerprints(padded_batch)


def test_generation_unchanged_under_segment_attention(tiny_model_dir):
    """A model switched to segment attention still answers padded batches (probes, generation) exactly as before.
    If this fails, probes after a packed stage measure a different model."""
    model = load_model(str(tiny_model_dir), dtype="float32")
    ids = torch.randint(5, 100, (2, 6))
    mask = torch.ones_like(ids)
    mask[1, :2] = 0
    before = model(input_ids=ids, attention_mask=mask).logits
    use_segment_attention(model)
    assert model.config._attn_implementation == "align-segments:sdpa"
    after = model(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(before[mask.bool()], after[mask.bool()], atol=1e-6)


def _row(i: int, tokens: int) -> list:
    """Row i as packed by `pack_rows`: chosen [100+i]·(tokens−2), rejected [200+i, 200+i]; they share no first
    token, so the row packs to exactly `tokens` tokens, every one of which names its row (token % 100 = i)."""
    chosen, rejected = [100 + i] * (tokens - 2), [200 + i] * 2
    return [(chosen, [0] + [1] * (len(chosen) - 1)), (rejected, [0, 1])]


@pytest.mark.parametrize(
    ("max_tokens", "groups"),
    [
        (2, [[0], [1], [2], [3], [4]]),  # every row is over the budget: each goes alone
        (9, [[0], [1, 2], [3], [4]]),  # 4+6 = 10 > 9; 6+3 = 9 fits exactly; 9 alone; 9+5 > 9
        (10, [[0, 1], [2], [3], [4]]),  # 4+6 = 10 fits exactly; 10+3 > 10; 3+9 > 10
        (13, [[0, 1, 2], [3], [4]]),  # 4+6+3 = 13; +9 > 13; 9+5 = 14 > 13
        (14, [[0, 1, 2], [3, 4]]),  # 13 + 9 > 14; 9+5 = 14 fits exactly
        (26, [[0, 1, 2, 3], [4]]),  # 22 + 5 = 27 > 26
    ],
)
def test_split_packed_groups_by_hand(max_tokens, groups):
    """Rows of 4, 6, 3, 9 and 5 packed tokens, split greedily into consecutive rows of at most `max_tokens` (the
    groups worked by hand beside each case, boundaries included). If this fails, micro-batches overflow the token
    budget, split earlier than needed, reorder rows, or drop an over-long row."""
    lengths = [4, 6, 3, 9, 5]
    batch = pack_rows([_row(i, n) for i, n in enumerate(lengths)])
    assert batch.segment_lengths.tolist() == lengths
    parts = [PackedBatch.from_inputs(p) for p in split_packed(batch.to_inputs(), max_tokens)]
    assert [p.segment_lengths.tolist() for p in parts] == [[lengths[i] for i in group] for group in groups]
    assert [sorted({t % 100 for t in p.input_ids[0].tolist()}) for p in parts] == groups
    first = parts[0].input_ids[0].tolist()
    assert first[: lengths[0]] == [100, 100, 200, 200]  # row 0: chosen's own 2 tokens, then rejected's 2


def test_split_packed_within_budget_is_the_batch_itself():
    """4+6+3+9+5 = 27 tokens fit a budget of 27: one part, the batch unchanged (not a copy that might differ)."""
    batch = pack_rows([_row(i, n) for i, n in enumerate([4, 6, 3, 9, 5])]).to_inputs()
    parts = split_packed(batch, 27)
    assert len(parts) == 1 and parts[0] is batch


def test_split_parts_score_like_the_whole(tiny_model_dir):
    """`_examples` (K = 3) packs to rows of 32, 52, 22 and 7 tokens (by hand: shared prompt + 2-token opening, then
    each answer's own tokens, e.g. row 0: 5+2 shared, chosen 7 own, rejected 5, 6 and 7 own → 32; row 3: 4+2 shared,
    chosen 1 own, rejected 0 own → 7). Split at 40 tokens: [32], [52] (over the limit, alone) and [22, 7]. The
    parts' log-probs, in order, are the whole batch's, and their reference log-probs travel along.
    If this fails, micro-batches train on shuffled or missing sequences."""
    model = load_model(str(tiny_model_dir), dtype="float32")
    add_completion_logps(model)
    use_segment_attention(model)
    examples = _examples(model.config.vocab_size, k=3)
    for i, example in enumerate(examples):
        example["ref_chosen_logps"], example["ref_rejected_logps"] = -float(i), [-10.0 * i - j for j in range(3)]
    batch = PackedPreferenceCollator()(examples)
    assert PackedBatch.from_inputs(batch).segment_lengths.tolist() == [32, 52, 22, 7]
    parts = split_packed(batch, 40)
    assert [PackedBatch.from_inputs(p).segment_lengths.tolist() for p in parts] == [[32], [52], [22, 7]]
    with torch.no_grad():
        whole = _logps(model, batch, True).logps.view(4, len(examples))  # (1 + K, rows)
        pieces = [_logps(model, p, True).logps.view(4, -1) for p in parts]
    assert torch.allclose(torch.cat(pieces, dim=1), whole, atol=1e-6)
    assert torch.equal(torch.cat([p["ref_rejected_logps"] for p in parts]), batch["ref_rejected_logps"])
    assert row_fingerprints(batch) == [f for p in parts for f in row_fingerprints(p)]

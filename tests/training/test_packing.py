"""The packed, prefix-shared layout: layout by hand, and log-probs/gradients equal to trl's padded layout."""

import copy

import pytest
import torch

from align.models import load_model
from align.training.logprobs import add_completion_logps, shared_prefix_logps
from align.training.multi_negative import MultiNegativeCollator
from align.training.packing import PACKED_KEYS, PackedPreferenceCollator, common_prefix, pack_rows, split_packed
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
    assert out["input_ids"].tolist() == [[1, 2, 3, 4, 5, 7, 8, 9, 9]]
    assert out["position_ids"].tolist() == [[0, 1, 2, 3, 3, 0, 1, 1, 2]]
    assert out["token_part"].tolist() == [0, 0, 0, 1, 2, 0, 1, 2, 2]
    assert out["segment_lengths"].tolist() == [5, 4]
    # sequences in trl order: chosen₀, chosen₁, rejected₀, rejected₁
    assert out["target_sequence"].tolist() == [0, 0, 2, 2, 1, 3, 3]
    assert out["target_index"].tolist() == [1, 2, 1, 2, 5, 5, 7]
    assert out["target_ids"].tolist() == [3, 4, 3, 5, 8, 9, 9]
    assert out["target_rank"].tolist() == [0, 1, 0, 1, 0, 0, 1]
    assert out["sequence_lengths"].tolist() == [4, 2, 4, 3]


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
        return model(
            input_ids=batch["input_ids"],
            position_ids=batch["position_ids"],
            completion_logps=True,
            packed={key: batch[key] for key in PACKED_KEYS},
        )
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
    assert packed_batch["input_ids"].numel() < int(padded_batch["attention_mask"].sum())

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


def test_split_parts_score_like_the_whole(tiny_model_dir):
    """A packed batch split at 20 tokens (rows of 11–29 tokens: one or two rows per part, one row over the limit)
    gives parts whose log-probs, in order, are the whole batch's, and whose reference log-probs travel along.
    If this fails, micro-batches train on shuffled or missing sequences."""
    model = load_model(str(tiny_model_dir), dtype="float32")
    add_completion_logps(model)
    use_segment_attention(model)
    examples = _examples(model.config.vocab_size, k=3)
    for i, example in enumerate(examples):
        example["ref_chosen_logps"], example["ref_rejected_logps"] = -float(i), [-10.0 * i - j for j in range(3)]
    batch = PackedPreferenceCollator()(examples)
    parts = split_packed(batch, 20)
    assert 1 < len(parts) < len(examples) + 1
    assert [int(p["segment_lengths"].sum()) for p in parts] == [
        sum(batch["segment_lengths"][i] for i in group) for group in _groups(batch["segment_lengths"].tolist(), 20)
    ]
    with torch.no_grad():
        whole = _logps(model, batch, True).logps.view(4, len(examples))  # (1 + K, rows)
        pieces = [_logps(model, p, True).logps.view(4, -1) for p in parts]
    assert torch.allclose(torch.cat(pieces, dim=1), whole, atol=1e-6)
    assert torch.equal(torch.cat([p["ref_rejected_logps"] for p in parts]), batch["ref_rejected_logps"])
    assert row_fingerprints(batch) == [f for p in parts for f in row_fingerprints(p)]


def _groups(lengths, limit):
    groups, current, tokens = [], [], 0
    for i, n in enumerate(lengths):
        if current and tokens + n > limit:
            groups.append(current)
            current, tokens = [], 0
        current.append(i)
        tokens += n
    return groups + [current]

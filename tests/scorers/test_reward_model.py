"""The `reward_model` scorer with a tiny random LlamaForSequenceClassification: it reads prompt and answer as the
model's chat expects, pools each answer's own last token whatever it is batched with, and refuses models that are
not one-output reward models."""

import math

import pytest

from align.errors import AlignError
from align.scorers import RewardModelScorer, ScoreItem, ScorerSettings
from tests.scorers.conftest import build_reward_model

ITEMS = [
    ScoreItem("How do I hard-boil eggs?", "Boil them 11 minutes, then an ice bath."),
    ScoreItem("How do I hard-boil eggs?", "Great question! It depends on many things, and everyone is different."),
    ScoreItem("List files?", "`ls -la`"),
    ScoreItem("How do I switch branches without losing work?", "Run `git stash`, switch, then `git stash pop`."),
    ScoreItem("q", "a"),
]


def scorer(folder, **settings) -> RewardModelScorer:
    return RewardModelScorer(ScorerSettings(reward_model=str(folder), device="cpu", **settings))


@pytest.mark.parametrize("variant", ["chat_template_and_pad", "plain_text_pad_is_eos"])
def test_scores_are_finite_and_the_same_batched_or_one_at_a_time(variant, tmp_path, reward_model_dir):
    """Items of different lengths batched 5 at a time (right-padded) score as they do alone, within 1e-5, for a
    tokenizer with a chat template and pad token, and for one with neither (padded with EOS). If this fails, a
    score depends on the other answers in its batch: padding leaks into the pooled token."""
    if variant == "chat_template_and_pad":
        folder = reward_model_dir
    else:
        folder = build_reward_model(tmp_path / "plain", chat_template=False, pad_token=False)
    batched = scorer(folder, batch_size=5).score(ITEMS)
    alone = [scorer(folder, batch_size=1).score([item])[0] for item in ITEMS]
    assert all(math.isfinite(score) for score in batched)
    assert len(set(batched)) == len(ITEMS)  # a random head still tells these answers apart
    assert batched == pytest.approx(alone, abs=1e-5)


@pytest.mark.parametrize("chat_template", [True, False])
def test_the_model_reads_the_chat_turns_or_prompt_blank_line_answer(chat_template, tmp_path):
    """With a chat template the model reads [user: prompt, assistant: answer] in it; without, "prompt\\n\\nanswer" with
    the tokenizer's own special tokens. The scorer's number is the model's logit for exactly that text."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = build_reward_model(tmp_path / "m", chat_template=chat_template)
    item = ITEMS[0]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    if chat_template:
        turns = [{"role": "user", "content": item.prompt}, {"role": "assistant", "content": item.answer}]
        text = tokenizer.apply_chat_template(turns, tokenize=False)
        assert text.startswith("<|im_start|>user\n")
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
    else:
        ids = tokenizer(f"{item.prompt}\n\n{item.answer}", return_tensors="pt")
    with torch.no_grad():
        expected = model(**ids).logits[0, 0].item()
    assert scorer(folder).score([item]) == pytest.approx([expected], abs=1e-6)


def test_a_model_with_two_outputs_is_refused(tmp_path):
    """A classifier with num_labels=2 has no single reward to read: one line naming the model and what to give."""
    folder = build_reward_model(tmp_path / "two", num_labels=2)
    with pytest.raises(AlignError, match=r"--reward-model: '.*two' has 2 outputs \(num_labels\), not one reward; give"):
        scorer(folder).score(ITEMS[:1])


def test_a_causal_lm_is_refused_rather_than_scored_by_a_random_head(tmp_path):
    """transformers would load a causal LM as a classifier with a randomly initialised head, with only a warning."""
    from align.models import build_tiny_model

    folder = build_tiny_model(tmp_path / "lm")
    with pytest.raises(AlignError, match=r"has no trained weights for score.weight \(a random head would score\)"):
        scorer(folder).score(ITEMS[:1])


def test_a_missing_model_is_one_line_naming_it(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(AlignError) as info:
        scorer(missing).score(ITEMS[:1])
    text = str(info.value)
    assert len(text.splitlines()) == 1 and str(missing) in text and "give --reward-model a local folder" in text


def test_an_answer_over_max_length_is_refused_not_cut(reward_model_dir):
    """Cutting would score a different (truncated) answer; the error says which flag raises the limit."""
    with pytest.raises(AlignError, match=r"over the reward model's max_length 8: raise --reward-max-length"):
        scorer(reward_model_dir, max_length=8).score(ITEMS[:2])


def test_the_model_loads_once(reward_model_dir, monkeypatch):
    """Scoring twice loads the model once (lazily, on first use)."""
    rm = scorer(reward_model_dir)
    calls = []
    load = rm._load
    monkeypatch.setattr(rm, "_load", lambda: calls.append(1) or load())
    rm.score(ITEMS[:1])
    rm.score(ITEMS[1:2])
    assert calls == [1]

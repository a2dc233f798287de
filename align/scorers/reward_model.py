"""The `reward_model` scorer: a sequence-classification reward model's logit for prompt + answer."""

from __future__ import annotations

from pathlib import Path

from align.errors import AlignError, Problem
from align.progress import progress_bar
from align.scorers.base import ScoreItem, Scorer, ScorerSettings

#: What to give instead, in every loading error.
WHAT_TO_GIVE = (
    "give --reward-model a local folder or Hub id of a trained sequence-classification model with one output "
    "(num_labels=1) and its tokenizer"
)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _refuse(source: str, message: str) -> AlignError:
    return AlignError(Problem("--reward-model", f"{source!r} {message}; {WHAT_TO_GIVE}"))


class RewardModelScorer(Scorer):
    """Scores each answer with `settings.reward_model`: the model reads the prompt as a user turn and the answer as
    the assistant turn (the tokenizer's chat template; "prompt\\n\\nanswer" when it has none) and its one logit,
    pooled at the last non-padding token, is the score. Loaded on first use, once."""

    name = "reward_model"
    description = "a sequence-classification reward model (--reward-model PATH_OR_ID): its logit for prompt + answer"
    units = "the reward model's raw reward (logit)"

    def __init__(self, settings: ScorerSettings):
        if not settings.reward_model:
            raise AlignError(Problem("--reward-model", f"the reward_model scorer needs a reward model: {WHAT_TO_GIVE}"))
        self.settings = settings
        self._loaded = None  # (model, tokenizer, device) once loaded

    def _load(self):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        source = self.settings.reward_model
        if Path(source).is_dir() and not (Path(source) / "config.json").is_file():
            raise _refuse(source, "is a folder without config.json, not a saved model")
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            model, info = AutoModelForSequenceClassification.from_pretrained(source, output_loading_info=True)
        except (OSError, ValueError, KeyError) as exc:
            raise _refuse(source, f"cannot be loaded as a reward model: {_first_line(exc)}") from None
        if info.get("missing_keys"):
            # transformers fills missing weights at random with only a warning: a causal LM loaded this way has a
            # random score head, and its "rewards" would be noise.
            missing = sorted(info["missing_keys"])[0]
            raise _refuse(source, f"has no trained weights for {missing} (a random head would score)")
        if model.config.num_labels != 1:
            raise _refuse(source, f"has {model.config.num_labels} outputs (num_labels), not one reward")
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise _refuse(source, "has a tokenizer with neither a pad nor an EOS token to pad batches with")
            tokenizer.pad_token = tokenizer.eos_token
        # Right padding, so every answer's real tokens keep their positions; the model pools its logit at the rightmost
        # token that is not the pad token, so it must know which id pads (batched and one-at-a-time scores then agree).
        tokenizer.padding_side = "right"
        model.config.pad_token_id = tokenizer.pad_token_id
        device = self.settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._loaded = (model.to(device).eval(), tokenizer, device)
        return self._loaded

    def _text(self, tokenizer, item: ScoreItem) -> str:
        if tokenizer.chat_template:
            turns = [{"role": "user", "content": item.prompt}, {"role": "assistant", "content": item.answer}]
            return tokenizer.apply_chat_template(turns, tokenize=False)
        return f"{item.prompt}\n\n{item.answer}"

    def score(self, items: list[ScoreItem]) -> list[float]:
        """The raw reward of each item; an item longer than `settings.max_length` tokens is refused (cutting it would
        score a different answer)."""
        model, tokenizer, device = self._loaded or self._load()
        # A chat template writes its own special tokens; plain text gets the tokenizer's (e.g. BOS).
        special = not tokenizer.chat_template
        scores: list[float] = []
        size = self.settings.batch_size
        with progress_bar(len(items), "reward model scoring") as bar:
            for start in range(0, len(items), size):
                scores += self._score_batch(model, tokenizer, device, items[start : start + size], special)
                bar.update(len(items[start : start + size]))
        return scores

    def _score_batch(self, model, tokenizer, device, batch: list[ScoreItem], special: bool) -> list[float]:
        """The raw reward of each item of one batch (see `score`)."""
        import torch

        encoded = tokenizer(
            [self._text(tokenizer, item) for item in batch],
            padding=True,
            add_special_tokens=special,
            return_tensors="pt",
        )
        lengths = encoded["attention_mask"].sum(-1).tolist()
        for item, length in zip(batch, lengths, strict=True):
            if length > self.settings.max_length:
                message = (
                    f"prompt {item.prompt[:40]!r} with an answer is {length} tokens, over the reward model's "
                    f"max_length {self.settings.max_length}: raise --reward-max-length (cutting would score a "
                    "different answer)"
                )
                raise AlignError(Problem("--reward-model", message))
        with torch.no_grad():
            logits = model(**encoded.to(device)).logits
        return logits[:, 0].float().tolist()

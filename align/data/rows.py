"""The internal row types every data format is normalised into: preference rows, prompt → completion rows, and
labelled prompt → completion rows (KTO)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PreferenceRow:
    """One prompt with a preferred answer and one dispreferred answer (or K of them, as a list).

    `prompt` and `chosen` are plain strings (the user turn and the preferred assistant answer); `rejected` is a string
    or a list of K strings (one chosen against K rejected, for `nca`/`infonca`); `meta` keeps the
    row's other columns (`kind`, `difficulty`, `domain`, `id`...) so recipes can filter and order by them. `source`
    and `line` say where the row came from, for error messages.
    """

    prompt: str
    chosen: str
    rejected: str | list[str]
    source: str = ""
    line: int = 0
    meta: dict = field(default_factory=dict)

    def to_text(self) -> dict:
        """The row as trl's standard (plain text) preference example, for models without a chat template."""
        return {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}

    def to_conversational(self) -> dict:
        """The row as trl's conversational preference example: the chat template is applied at tokenisation.

        Multi-turn conversations keep their full message lists (`meta["messages"]`, set by the format normalisers).
        """
        messages = self.meta.get("messages")
        if messages:
            return {key: messages[key] for key in ("prompt", "chosen", "rejected")}
        return {
            "prompt": [{"role": "user", "content": self.prompt}],
            "chosen": [{"role": "assistant", "content": self.chosen}],
            "rejected": [{"role": "assistant", "content": self.rejected}]
            if isinstance(self.rejected, str)
            else [[{"role": "assistant", "content": answer}] for answer in self.rejected],
        }

    @property
    def num_rejected(self) -> int:
        """K: how many rejected answers this row holds."""
        return 1 if isinstance(self.rejected, str) else len(self.rejected)

    def key(self) -> tuple:
        """What makes two rows the same example (a duplicate): prompt and answers, outer whitespace ignored."""
        rejected = (self.rejected,) if isinstance(self.rejected, str) else tuple(self.rejected)
        return (self.prompt.strip(), self.chosen.strip(), tuple(answer.strip() for answer in rejected))


@dataclass
class CompletionRow:
    """One prompt with the answer to imitate (SFT); `meta` keeps the other columns (`kind`, `domain`, `id`...)."""

    prompt: str
    completion: str
    source: str = ""
    line: int = 0
    meta: dict = field(default_factory=dict)

    def to_conversational(self) -> dict:
        """trl's conversational prompt-completion example (the loss covers the completion only)."""
        return {
            "prompt": [{"role": "user", "content": self.prompt}],
            "completion": [{"role": "assistant", "content": self.completion}],
        }

    def to_text(self) -> dict:
        return {"prompt": self.prompt, "completion": self.completion}

    def key(self) -> tuple:
        """What makes two rows the same example (a duplicate): prompt and completion, outer whitespace ignored."""
        return (self.prompt.strip(), self.completion.strip())


@dataclass
class KtoRow:
    """One prompt with one answer and a verdict on it (KTO's unpaired feedback): `label` True = desirable, False =
    undesirable. `meta` keeps the other columns (`kind`, `difficulty`...), and `meta["messages"]` the full message
    lists (`prompt`, `completion`) when the row came from a multi-turn conversation. `pair` holds the answers
    (chosen first) of the preference pair the row was split from, and is empty for a row of a KTO file."""

    prompt: str
    completion: str
    label: bool
    source: str = ""
    line: int = 0
    meta: dict = field(default_factory=dict)
    pair: tuple[str, ...] = ()

    def key(self) -> tuple:
        """What makes two rows the same example (a duplicate): prompt and completion, whatever the label (the same
        answer marked both ways is a contradiction, reported with the earlier row). Rows split from pairs also
        carry their pair: a chosen answer shared by several pairs of a prompt is one row per pair, as each pair
        gives it once (trl's `unpair_preference_dataset` does the same)."""
        return (self.prompt.strip(), self.completion.strip(), tuple(answer.strip() for answer in self.pair))

    @property
    def role(self) -> str:
        """`desirable` or `undesirable`: how `align data inspect` groups the answers."""
        return "desirable" if self.label else "undesirable"

    def to_conversational(self) -> dict:
        """trl's conversational unpaired preference example: prompt and completion messages, and the label."""
        messages = self.meta.get("messages")
        if messages:
            return {"prompt": messages["prompt"], "completion": messages["completion"], "label": self.label}
        return {
            "prompt": [{"role": "user", "content": self.prompt}],
            "completion": [{"role": "assistant", "content": self.completion}],
            "label": self.label,
        }

    def to_text(self) -> dict:
        """trl's standard (plain text) unpaired preference example."""
        return {"prompt": self.prompt, "completion": self.completion, "label": self.label}

"""The internal row types every data format is normalised into: preference rows and prompt → completion rows."""

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

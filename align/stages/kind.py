"""`StageKind`: everything that differs between kinds of curriculum stage, behind one interface.

A kind (`preference`, `sft`, …) is one module in `align.stages` defining a subclass, plus one line in the registry
(`align.stages.STAGE_KINDS`). The rest of align asks the registry — recipe validation, row selection, `align plan`,
`align data inspect`, the stage runner — and never compares kind names.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from pathlib import Path

    from align.data.issues import RowIssues
    from align.on_policy.candidates import Candidate
    from align.on_policy.prompts import PromptRow
    from align.recipe.schema import GenerateConfig, SourceConfig, StageConfig
    from align.recipe.typed import Collector
    from align.recipe.yaml_source import KeyPath

logger = logging.getLogger(__name__)


def rows_dropped_for_long_prompts(stage: StageConfig, offered: int, trainer) -> int:
    """For kinds whose trl trainer drops rows whose prompt alone fills `max_length` (DPO, KTO): how many of the
    `offered` train + held-out rows it dropped, with a warning, so nothing disappears silently."""
    kept = len(trainer.train_dataset) + (len(trainer.eval_dataset) if trainer.eval_dataset is not None else 0)
    dropped = offered - kept
    if dropped:
        logger.warning(
            "stage %s: %d rows dropped because their prompt alone fills max_length=%s; raise max_length to keep them",
            stage.name,
            dropped,
            trainer.args.max_length,
        )
    return dropped


def check_micro_batch_tokens(stage: StageConfig, path: KeyPath, out: Collector) -> None:
    """For kinds that pack batches (preference, sft): `micro_batch_tokens` is a positive count, with the packed
    layout."""
    if stage.micro_batch_tokens is None:
        return
    if stage.micro_batch_tokens <= 0:
        out.add(path + ("micro_batch_tokens",), f"{stage.micro_batch_tokens} must be a positive number of tokens")
    elif stage.batch_layout != "packed":
        out.add(path + ("micro_batch_tokens",), "splits packed batches only; set batch_layout: packed or remove it")


class StageKind:
    """One kind of stage. Class attributes describe it; methods hold its kind-specific behaviour.

    Attributes:
        name: the recipe's `kind:` value.
        description: what the kind trains, for the recipe reference (`align validate --explain stages.kind`).
        trl_config: the trl config class its `training:` mapping passes through to, by name (`DPOConfig`).
        refusal_groups: which groups of `align.recipe.trl_refusals` apply to its `training:` keys.
        takes_loss: whether the stage's `loss:` key means anything for it.
        row_format: the data format its sources are always read as (`completion`), or None to use each source's own.
        generated_format: the format its on-policy rows (`data.generate`) are written in and read back as, or None
            when the kind cannot make rows from sampled answers.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    trl_config: ClassVar[str]
    refusal_groups: ClassVar[tuple[str, ...]]
    takes_loss: ClassVar[bool]
    row_format: ClassVar[str | None] = None
    generated_format: ClassVar[str | None] = None

    def config_class(self) -> type:
        """trl's config class for this kind's `training:` mapping."""
        import trl

        return getattr(trl, self.trl_config)

    # --- recipe validation (`align validate`, `plan`, `train`) ------------------------------------------------------

    def check_source(self, source: SourceConfig, path: KeyPath, out: Collector) -> None:
        """Problems with one data source that only this kind has (`out.add(path + (key,), message)`)."""

    def check_stage(self, stage: StageConfig, raw: dict, training: dict, path: KeyPath, out: Collector) -> None:
        """Problems with the stage's own keys that only this kind has. `raw` is the stage's YAML mapping (to tell a
        key that was set from a default), `training` the stage's merged `training:` mapping."""

    # --- rows -------------------------------------------------------------------------------------------------------

    def read_rows(self, source: SourceConfig, base_dir: Path, issues: RowIssues | None) -> list:
        """One source's rows, in file order; with `issues` (bad_rows: drop) bad rows are counted there, left out."""
        raise NotImplementedError

    def check_rows(self, stage: StageConfig, rows: list) -> None:
        """`AlignError` when the selected rows (train and held-out) do not suit the stage, e.g. its loss."""

    def rows_from_candidates(
        self, settings: GenerateConfig, prompts: list[PromptRow], candidates: list[list[Candidate]]
    ) -> tuple[list[dict], dict]:
        """On-policy rows (`data.generate`): the rows (as written to `generated.jsonl`, in `generated_format`) that
        each prompt's scored candidate answers give, and a report of what was built and dropped (JSON-ready)."""
        raise NotImplementedError(f"kind {self.name!r} cannot make rows from sampled answers")

    def generated_rows_bound(self, settings: GenerateConfig, prompts: int) -> int:
        """The most rows `prompts` prompts can give (`align plan`, before anything is sampled)."""
        raise NotImplementedError(f"kind {self.name!r} cannot make rows from sampled answers")

    def generated_answers_per_row(self, settings: GenerateConfig) -> int:
        """How many answers (sequences) one generated row trains on (`align plan`'s token bound)."""
        return 1

    # --- training ---------------------------------------------------------------------------------------------------

    def build_trainer(self, stage: StageConfig, **trainer_kwargs: Any):
        """The trl trainer for the stage; `trainer_kwargs` are the `Trainer` keywords the stage runner built."""
        raise NotImplementedError

    def dropped_rows(self, stage: StageConfig, offered: int, trainer) -> int:
        """Rows the trainer dropped at tokenisation out of the `offered` train + held-out rows (warned by the kind)."""
        return 0

    # --- reporting (`summary.json`, `align plan`, `align validate`) -------------------------------------------------

    def loss_terms(self, stage: StageConfig) -> list[dict]:
        """The loss the stage trains with, as `summary.json` records it: `[{name, weight, **params}]`."""
        raise NotImplementedError

    def loss_label(self, stage: StageConfig) -> str:
        """The loss in one short line, e.g. `dpo + 0.2·sft`."""
        raise NotImplementedError

    def reference_label(self, stage: StageConfig) -> str:
        """What the stage's losses compare against (`base`, `previous`, `none`), or `-` when it has no reference."""
        return "-"

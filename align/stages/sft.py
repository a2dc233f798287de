"""`kind: sft`: prompt → completion rows trained with trl's `SFTTrainer` on the completion tokens only (trl
`SFTConfig` under `training`); a warm-up before preference stages. Batches are packed without padding where that is
exact (`align.training.sft_trainer`)."""

from __future__ import annotations

from typing import Any

from align.stages.kind import StageKind, check_micro_batch_tokens

SFT_COLUMNS = ("prompt", "completion")


class SftStage(StageKind):
    name = "sft"
    description = (
        "prompt → completion rows (a `completion` column, or a preference file's `chosen`) trained with trl's "
        "SFTTrainer on the completion tokens only (trl `SFTConfig` under `training`), its batches packed without "
        "padding where that is exact (`batch_layout`); use it as a warm-up before preference stages"
    )
    trl_config = "SFTConfig"
    refusal_groups = ("model_loading",)
    takes_loss = False
    row_format = "completion"
    generated_format = "completion"

    def check_source(self, source, path, out) -> None:
        if source.format != "auto":
            out.add(path + ("format",), "sft stages always read prompt → completion rows; leave `format` unset")
        unknown = sorted(set(source.columns) - set(SFT_COLUMNS))
        if unknown:
            out.add(path + ("columns", unknown[0]), "sft stages map only `prompt` and `completion`")

    def check_stage(self, stage, raw: dict, training: dict, path, out) -> None:
        if "loss" in raw:
            out.add(
                path + ("loss",),
                "sft stages train with trl's SFT loss (mean token NLL of the completion); "
                "remove `loss`, or add an `sft` term to a preference stage instead",
            )
        check_micro_batch_tokens(stage, path, out)
        if stage.eval.gates.min_pair_accuracy is not None:
            out.add(
                path + ("eval", "gates", "min_pair_accuracy"),
                "sft stages have no pairs; use it on a preference stage",
            )

    def read_rows(self, source, base_dir, issues) -> list:
        from align.data import load_completion_rows

        return load_completion_rows(source.path, source.columns, base_dir, source.split, issues=issues)

    def rows_from_candidates(self, settings, prompts, candidates) -> tuple[list[dict], dict]:
        """Rejection sampling: each prompt's best answer that clears the quality bar."""
        from align.on_policy.unpaired import best_rows

        return best_rows(prompts, candidates, settings.min_chosen_score)

    def generated_rows_bound(self, settings, prompts: int) -> int:
        return prompts

    def build_trainer(self, stage, **trainer_kwargs: Any):
        """`FastSftTrainer`: packed rows and completion-only log-probs where exact, else stock `SFTTrainer`."""
        from align.training.sft_trainer import FastSftTrainer

        return FastSftTrainer(
            batch_layout=stage.batch_layout, micro_batch_tokens=stage.micro_batch_tokens, **trainer_kwargs
        )

    def loss_terms(self, stage) -> list[dict]:
        return [{"name": "sft (trl)", "weight": 1.0}]

    def loss_label(self, stage) -> str:
        return "sft (trl)"

"""`kind: kto`: unpaired feedback — prompt, completion and a desirable/undesirable label, or a preference file's
pairs split into such rows — trained with trl's `KTOTrainer` (trl `KTOConfig` under `training`)."""

from __future__ import annotations

from typing import Any

from align.stages.kind import StageKind, rows_dropped_for_long_prompts

# The fields a kto stage's sources may map: the `kto` format's, and the pair formats' (pairs are split into rows).
KTO_COLUMNS = ("prompt", "completion", "label", "chosen", "rejected")
# trl's loss types that estimate the KL term from mismatched prompt/completion pairs within a batch.
NO_KL_LOSS = "apo_zero_unpaired"
_REFERENCE_SYNC = (
    "trl's KTOTrainer cannot sync a reference with a LoRA adapter (it refuses sync_ref_model with PEFT); for a "
    "fresher reference, split the stage in two and set `reference: previous` on the second"
)


def _training_key(raw: dict, path, key: str):
    """Where `training.<key>` was set: the stage's own `training`, else the recipe's top-level one."""
    own = raw.get("training")
    return path + ("training", key) if isinstance(own, dict) and key in own else ("training", key)


class KtoStage(StageKind):
    name = "kto"
    description = (
        "unpaired feedback: prompt → completion rows with a `label` (true = desirable, false = undesirable), or a "
        "preference file whose pairs each give a desirable row (chosen) and an undesirable row per rejected answer, "
        "trained with trl's KTOTrainer against the stage's `reference` (trl `KTOConfig` under `training`: `beta`, "
        "`loss_type`, `desirable_weight`, `undesirable_weight`)"
    )
    trl_config = "KTOConfig"
    refusal_groups = ("model_loading",)
    takes_loss = False
    generated_format = "kto"

    def check_source(self, source, path, out) -> None:
        unknown = sorted(set(source.columns) - set(KTO_COLUMNS))
        if unknown:
            out.add(path + ("columns", unknown[0]), f"kto stages map only {', '.join(KTO_COLUMNS)}")

    def check_stage(self, stage, raw: dict, training: dict, path, out) -> None:
        if "loss" in raw:
            out.add(
                path + ("loss",),
                "kto stages train with trl's KTO loss; remove `loss` and set `beta`, `loss_type`, "
                "`desirable_weight` or `undesirable_weight` under the stage's `training`",
            )
        for key in ("batch_layout", "micro_batch_tokens"):
            if key in raw:
                out.add(path + (key,), "kto stages are laid out by trl's KTOTrainer; remove it")
        if stage.eval.gates.min_pair_accuracy is not None:
            out.add(
                path + ("eval", "gates", "min_pair_accuracy"),
                "kto stages have no pairs, so no held-out pair accuracy (their held-out figures are rewards/chosen, "
                "rewards/rejected, rewards/margins and kl); use it on a preference stage",
            )
        if stage.reference == "none":
            out.add(
                path + ("reference",),
                "KTO measures each answer against a reference policy; use `reference: base` or `previous`",
            )
        self._check_training(raw, training, path, out)

    @staticmethod
    def _check_training(raw: dict, training: dict, path, out) -> None:
        """The trl settings KTOTrainer refuses with a LoRA adapter, or with the KL term its default loss needs."""
        for key in ("sync_ref_model", "ref_model_mixup_alpha", "ref_model_sync_steps"):
            if key in training:
                out.add(_training_key(raw, path, key), _REFERENCE_SYNC)
        if training.get("loss_type", "kto") == NO_KL_LOSS:
            return
        # The KL estimate pairs each prompt with its batch neighbour's completion, so a batch needs two rows, in
        # the order trl built the neighbours in.
        batch = training.get("per_device_train_batch_size")
        if isinstance(batch, int) and not isinstance(batch, bool) and batch == 1:
            out.add(
                _training_key(raw, path, "per_device_train_batch_size"),
                "KTO estimates its KL term from the other rows of a batch, so it needs at least 2 per device; "
                f"raise it, or set `loss_type: {NO_KL_LOSS}` (no KL term)",
            )
        strategy = training.get("train_sampling_strategy", "sequential")
        if strategy != "sequential":
            out.add(
                _training_key(raw, path, "train_sampling_strategy"),
                f"KTO pairs each row with its batch neighbours' completions for the KL term, which needs the "
                f"sequential sampler, not {strategy!r}; remove it (rows are still shuffled by `data.order`)",
            )

    def read_rows(self, source, base_dir, issues) -> list:
        from align.data import load_kto_rows

        return load_kto_rows(source.path, source.format, source.columns, base_dir, source.split, issues)

    def rows_from_candidates(self, settings, prompts, candidates) -> tuple[list[dict], dict]:
        """Every distinct answer labelled: desirable when it clears the quality bar, undesirable when not."""
        from align.on_policy.unpaired import labelled_rows

        return labelled_rows(prompts, candidates, settings.min_chosen_score)

    def generated_rows_bound(self, settings, prompts: int) -> int:
        return prompts * (settings.samples + settings.include_reference + settings.include_greedy)

    def build_trainer(self, stage, **trainer_kwargs: Any):
        """trl's `KTOTrainer`. Given a carried `PeftModel`, trl copies its adapter as the frozen `ref` adapter (kept
        for `reference: previous`; the stage runner removes it otherwise, and trl then disables the adapter for the
        reference, i.e. the base model)."""
        from trl import KTOTrainer

        return KTOTrainer(**trainer_kwargs)

    def dropped_rows(self, stage, offered: int, trainer) -> int:
        """Rows trl dropped because the prompt alone fills `max_length`, with a warning."""
        return rows_dropped_for_long_prompts(stage, offered, trainer)

    def loss_terms(self, stage) -> list[dict]:
        return [{"name": "kto (trl)", "weight": 1.0}]

    def loss_label(self, stage) -> str:
        return "kto (trl)"

    def reference_label(self, stage) -> str:
        return stage.reference

"""`kind: preference`: pairs (or a chosen answer and K rejected ones) trained with align's contrastive losses on
`ContrastiveTrainer`, trl's `DPOTrainer` with the loss taken from align's registry (trl `DPOConfig` under
`training`)."""

from __future__ import annotations

from typing import Any

from align.errors import AlignError
from align.stages.kind import StageKind, check_micro_batch_tokens, rows_dropped_for_long_prompts


def _terms(stage):
    from align.losses import LossTerm

    return [LossTerm(t.name, t.weight, dict(t.params), t.rewards) for t in stage.loss]


class PreferenceStage(StageKind):
    name = "preference"
    description = "pairs trained with a contrastive loss (trl `DPOConfig` under `training`)"
    trl_config = "DPOConfig"
    refusal_groups = ("loss", "model_loading")
    takes_loss = True
    generated_format = "standard"

    def check_source(self, source, path, out) -> None:
        if source.format == "kto":
            out.add(
                path + ("format",),
                "kto rows (one labelled answer each) are not pairs; read them in a `kind: kto` stage",
            )

    def check_stage(self, stage, raw: dict, training: dict, path, out) -> None:
        self._check_loss_needs(stage, training, path, out)
        generate = stage.data.generate
        if generate is not None:
            answers = generate.samples + generate.include_reference + generate.include_greedy
            if answers < generate.negatives + 1:
                out.add(
                    path + ("data", "generate", "samples"),
                    f"{generate.samples} answers per prompt cannot give a chosen answer and {generate.negatives} "
                    "rejected ones; sample more",
                )
        check_micro_batch_tokens(stage, path, out)
        accuracy = stage.eval.gates.min_pair_accuracy
        at = path + ("eval", "gates", "min_pair_accuracy")
        if accuracy is None:
            return
        if not stage.data.eval and not stage.data.eval_fraction:
            out.add(at, "needs held-out pairs: set data.eval or data.eval_fraction")
        elif not 0.0 <= accuracy <= 1.0:
            out.add(at, f"{accuracy} must be in [0, 1]")

    @staticmethod
    def _check_loss_needs(stage, training: dict, path, out) -> None:
        """What the stage's loss terms need from it (reference, cached reference sums): `align.losses` checks."""
        from align.losses import StageFacts, loss_names, term_conflicts

        if any(t.name not in loss_names() for t in stage.loss):
            return  # already reported where the loss was read
        facts = StageFacts(stage.reference, bool(training.get("precompute_ref_log_probs")))
        for conflict in term_conflicts(_terms(stage), facts):
            out.add(path + conflict.key, conflict.message)

    def read_rows(self, source, base_dir, issues) -> list:
        from align.data import load_preference_rows

        return load_preference_rows(source.path, source.format, source.columns, base_dir, source.split, issues)

    def check_rows(self, stage, rows: list) -> None:
        """One K across the stage's rows, and a K its loss terms can take (`align.losses.term_conflicts`)."""
        from align.data.preference import check_same_negatives
        from align.losses import StageFacts, term_conflicts

        check_same_negatives(rows)
        for conflict in term_conflicts(_terms(stage), StageFacts(rejected_per_prompt=rows[0].num_rejected)):
            raise AlignError(f"stage {stage.name!r}: {conflict.message}")

    def rows_from_candidates(self, settings, prompts, candidates) -> tuple[list[dict], dict]:
        """Pairs (or K-negative rows) by align's pair builder, ranked by the stage's scorers (the candidates' `rank`,
        or the concise score), with the stage's margin, per-prompt cap and quality bar."""
        from align.data.pair_builder import BuildOptions, build_pairs
        from align.on_policy.candidates import to_scored_prompts
        from align.on_policy.loop_pairs import loop_pairs

        ranked = any(c.rank is not None for group in candidates for c in group)
        options = BuildOptions(
            score="data" if ranked else "concise",
            min_margin=settings.min_margin,
            max_pairs_per_prompt=settings.max_pairs_per_prompt if settings.negatives == 1 else None,
            negatives=settings.negatives,
            min_chosen_score=settings.min_chosen_score,
        )
        rows, report = build_pairs(to_scored_prompts(prompts, candidates), options)
        chosen_reference = sum(row["chosen"] == row.get("reference") for row in rows)
        looped = loop_pairs(prompts, candidates, settings.max_pairs_per_prompt) if settings.loop_pairs else []
        return rows + looped, {**report.to_dict(), "chosen_reference": chosen_reference, "loop_pairs": len(looped)}

    def generated_rows_bound(self, settings, prompts: int) -> int:
        answers = settings.samples + settings.include_reference + settings.include_greedy
        per_prompt = answers * (answers - 1) // 2 if settings.negatives == 1 else 1
        if settings.negatives == 1 and settings.max_pairs_per_prompt is not None:
            per_prompt = min(per_prompt, settings.max_pairs_per_prompt)
        if settings.loop_pairs:  # one per looping sampled answer, under the same per-prompt cap
            looping = settings.samples + settings.include_greedy
            per_prompt += min(looping, settings.max_pairs_per_prompt or looping)
        return prompts * per_prompt

    def generated_answers_per_row(self, settings) -> int:
        return 1 + settings.negatives

    def build_trainer(self, stage, **trainer_kwargs: Any):
        from align.training.trainer import ContrastiveTrainer

        return ContrastiveTrainer(
            loss_terms=_terms(stage),
            batch_layout=stage.batch_layout,
            micro_batch_tokens=stage.micro_batch_tokens,
            **trainer_kwargs,
        )

    def dropped_rows(self, stage, offered: int, trainer) -> int:
        """Rows trl dropped because the prompt alone fills `max_length`, with a warning: nothing disappears silently."""
        return rows_dropped_for_long_prompts(stage, offered, trainer)

    def loss_terms(self, stage) -> list[dict]:
        return [{"name": t.name, "weight": t.weight, **t.params} for t in stage.loss]

    def loss_label(self, stage) -> str:
        return " + ".join(f"{t.weight:g}·{t.name}" if t.weight != 1 else t.name for t in stage.loss)

    def reference_label(self, stage) -> str:
        return stage.reference

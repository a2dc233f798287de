"""trl config fields that align's trainers would silently ignore: refused where a recipe sets them (`align validate`,
`plan` and `train` share the check), each with what to write instead. The one table of them.

align's preference trainer (`ContrastiveTrainer`) replaces trl's `DPOTrainer._compute_loss` with align's registered
losses, so every field only that method reads (checked against trl 1.16's `dpo_trainer.py`) would do nothing; both
trainers get a model and tokenizer align loaded, so the fields trl uses only to load them would do nothing either.

Checked and left allowed, because they work under align: `precompute_ref_log_probs` and `precompute_ref_batch_size`
(trl's precompute pass calls align's `compute_ref_log_probs`), `disable_dropout`, `activation_offloading` (trl's
`training_step`, which align's calls), `max_length` and `truncation_mode` (align's collators take them),
`router_aux_loss_coef` (align's trainer adds the MoE router loss), `use_liger_kernel` (transformers patches the
layers in `train()`, after trl turned the fused cross-entropy forward off; align's log-prob path is untouched).
"""

from __future__ import annotations

from dataclasses import dataclass

# Refusal groups. A stage kind names the groups that apply to it (`StageKind.refusal_groups`, `align.stages`):
# LOSS — fields only trl's own loss step reads, for kinds whose loss is align's; MODEL_LOADING — fields trl uses only
# to load the model and tokenizer, which align loads itself for every kind. HUB fields apply to every kind, whatever
# its groups: transformers' Hub push would upload each stage's checkpoints folder, not the trained model.
LOSS = "loss"
MODEL_LOADING = "model_loading"
HUB = "hub"
_PUSH = "publish a finished run with `align export RUN --push-to-hub REPO [--private]` (see `align export --help`)"
_OWN_LOSSES = "align's losses (`align validate --explain loss`), or register one with `@register_loss` (align.losses)"
_REFERENCE_SYNC = (
    "TR-DPO's reference sync needs a separate full reference model, and align trains LoRA adapters (trl refuses it "
    "with PEFT); for a fresher reference, split the stage in two and set `reference: previous` on the second"
)


@dataclass(frozen=True)
class Refusal:
    """A trl field align does not honour in stages whose kind lists `group`, and what to do instead."""

    group: str
    instead: str
    #: What the field would do under align, when not simply nothing; None: "align's stages would ignore it".
    effect: str | None = None

    def applies_to(self, groups: tuple[str, ...]) -> bool:
        """Whether a stage kind with these `refusal_groups` refuses this field."""
        return self.group == HUB or self.group in groups

    @property
    def kinds(self) -> list[str]:
        """The registered stage kinds that refuse this field (those whose `refusal_groups` take its group)."""
        from align.stages import STAGE_KINDS

        return [name for name, kind in STAGE_KINDS.items() if self.applies_to(kind.refusal_groups)]

    def message(self, kind: str) -> str:
        """The one-line refusal in a stage of `kind`."""
        effect = self.effect or f"trl's option, which align's {kind} stages would ignore"
        return f"{effect}: {self.instead}"


TRL_REFUSALS: dict[str, Refusal] = {
    # Read only by trl's loss, which align's registered losses replace.
    "loss_type": Refusal(LOSS, "choose losses with the stage's `loss` key, e.g. `loss: [{name: dpo}]`"),
    "loss_weights": Refusal(LOSS, "give each term a `weight` in the stage's `loss` list"),
    "beta": Refusal(LOSS, "set `beta` on the loss, e.g. `loss: {name: dpo, beta: 0.1}`"),
    "label_smoothing": Refusal(LOSS, "use the loss that has it: `loss: {name: robust, label_smoothing: 0.1}`"),
    "ld_alpha": Refusal(LOSS, "use the LD-DPO loss: `loss: {name: lddpo, alpha: 0.5}`"),
    "f_divergence_type": Refusal(LOSS, f"align's losses use the reverse-KL log-ratio; choose one of {_OWN_LOSSES}"),
    "f_alpha_divergence_coef": Refusal(LOSS, f"align has no f-divergence losses; choose one of {_OWN_LOSSES}"),
    "use_weighting": Refusal(LOSS, f"WPO weighting is not among {_OWN_LOSSES}"),
    "discopop_tau": Refusal(LOSS, f"DiscoPOP is not among {_OWN_LOSSES}"),
    # Options of older trl versions (not DPOConfig fields in trl 1.x), refused with align's way to get them.
    "rpo_alpha": Refusal(LOSS, "add an `sft` term to the stage's loss list: `loss: [{name: dpo}, {name: sft}]`"),
    "reference_free": Refusal(LOSS, "set `reference: none` on the stage with a reference-free loss (simpo, cpo, orpo)"),
    # The reference model: align's is the base model with adapters off, or a frozen adapter copy.
    "sync_ref_model": Refusal(LOSS, _REFERENCE_SYNC),
    "ref_model_mixup_alpha": Refusal(LOSS, _REFERENCE_SYNC),
    "ref_model_sync_steps": Refusal(LOSS, _REFERENCE_SYNC),
    # Batch layout: align's collators lay out preference batches.
    "padding_free": Refusal(
        LOSS,
        "align packs preference batches without padding itself: `batch_layout: packed` on the stage (the default)",
    ),
    # Model loading: align loads the model and tokenizer and hands both to the trainer.
    "model_init_kwargs": Refusal(
        MODEL_LOADING,
        "align loads the model itself: set `model.dtype`, `model.attn_implementation`, "
        "`model.trust_remote_code` or `model.quantization`",
    ),
    "trust_remote_code": Refusal(
        MODEL_LOADING, "align loads the model and tokenizer itself: set `model.trust_remote_code: true`"
    ),
    # Hub upload: transformers would push every stage's checkpoints folder to a repo named after it ("checkpoints").
    **{
        key: Refusal(HUB, _PUSH, "transformers' Hub upload would push each stage's checkpoints, not the model")
        for key in (
            "push_to_hub",
            "hub_model_id",
            "hub_strategy",
            "hub_token",
            "hub_private_repo",
            "hub_always_push",
            "hub_revision",
        )
    },
}


def refused_training_keys(kind: str) -> dict[str, str]:
    """Key → one-line message for each trl field refused in `training` of a stage of `kind`."""
    from align.stages import stage_kind

    groups = stage_kind(kind).refusal_groups
    return {key: refusal.message(kind) for key, refusal in TRL_REFUSALS.items() if refusal.applies_to(groups)}

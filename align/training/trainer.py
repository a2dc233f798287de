"""`ContrastiveTrainer`: trl's `DPOTrainer` with the loss taken from align's registry.

Everything but the loss step is trl's: tokenisation, collation, precomputed reference log-probs, the PEFT
reference (the base model with the adapter disabled, or a frozen `ref` adapter copy), logging and checkpoints.
"""

from __future__ import annotations

import contextlib
import copy
import logging

import torch
from accelerate.utils import DistributedType
from trl import DPOTrainer

from align.errors import AlignError
from align.losses import (
    CombinedLoss,
    LossInputs,
    LossTerm,
    StageFacts,
    combine_losses,
    loss_info,
    needs_reference,
    term_conflicts,
)
from align.training.families import router_aux_loss_coef
from align.training.layout import choose_layout
from align.training.logprobs import CompletionLogps, add_completion_logps, shared_prefix_logps
from align.training.metrics import MicroBatchState, metric_inputs, preference_metrics
from align.training.multi_negative import (
    MultiNegativeCollator,
    is_multi_negative,
    rejected_per_prompt,
    split_chosen_rejected,
    tokenize_multi_negative,
)
from align.training.packed_batch import PackedBatch, is_packed
from align.training.packing import PackedPreferenceCollator, row_length, split_packed, token_groups
from align.training.private_api import (
    check_trainer_attributes,
    metrics_store,
    precomputes_reference,
    set_signature_columns,
    signature_columns,
    trainer_tokenizer,
    use_adapter,
)
from align.training.segment_attention import use_segment_attention
from align.training.sharding import row_fingerprints

logger = logging.getLogger(__name__)


class ContrastiveTrainer(DPOTrainer):
    """A `DPOTrainer` whose loss is a weighted sum of registered losses (`align.losses`).

    Args (beyond `DPOTrainer`'s):
        loss_terms: the terms to sum, e.g. `[LossTerm("dpo", params={"beta": 0.1})]`. A set of terms that reads no
            reference log-probs skips the reference forward pass entirely.
        batch_layout: `packed` (default): each row's prompt runs once and its answers are packed without padding
            (`align.training.packing`); `padded`: trl's layout, one padded row per answer.
        micro_batch_tokens: packed layout only: a training batch longer than this many packed tokens runs as several
            forward/backward passes over groups of whole rows, gradients accumulated (same loss and gradients, less
            activation memory). None: one pass per batch.
    """

    def __init__(
        self,
        *args,
        loss_terms: list[LossTerm],
        batch_layout: str = "packed",
        micro_batch_tokens: int | None = None,
        **kwargs,
    ):
        if batch_layout not in ("packed", "padded"):
            raise ValueError(f"batch_layout must be packed or padded, not {batch_layout!r}")
        if micro_batch_tokens is not None and (batch_layout != "packed" or micro_batch_tokens < 1):
            raise ValueError("micro_batch_tokens needs batch_layout packed and a positive token count")
        self.loss_terms = list(loss_terms)
        self.batch_layout = batch_layout
        self.micro_batch_tokens = micro_batch_tokens
        self._micro: MicroBatchState | None = None  # set while a split batch runs its parts
        self.rows_seen: set[str] = set()  # fingerprints of the training rows this process trained on
        self.uses_reference = needs_reference(self.loss_terms)
        self.uses_shared_prefix = any(loss_info(t.name).needs_shared_prefix for t in self.loss_terms)
        config = kwargs.get("args")
        if config is not None:
            config = kwargs["args"] = _own_copy(config)
            if not self.uses_reference:
                config.precompute_ref_log_probs = False
            self._refuse_conflicts(StageFacts(precompute_ref_log_probs=bool(config.precompute_ref_log_probs)))
        model = kwargs.get("model", args[0] if args else None)
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.router_aux_loss_coef = 0.0
        if not isinstance(model, str):
            override = getattr(config, "router_aux_loss_coef", None) if config is not None else None
            self.router_aux_loss_coef = router_aux_loss_coef(base, override)
            self.layout = choose_layout(base, batch_layout, self.router_aux_loss_coef)
            self.batch_layout = self.layout.batch_layout
            if self.batch_layout != "packed":
                self.micro_batch_tokens = None
        if config is not None and kwargs.get("data_collator") is None:
            kwargs["data_collator"] = self._collator(config, kwargs["processing_class"])
        super().__init__(*args, **kwargs)
        check_trainer_attributes(self)
        self._prepare_models()
        if self.micro_batch_tokens and self.accelerator.distributed_type == DistributedType.DEEPSPEED:
            raise AlignError(
                "micro_batch_tokens cannot split batches under DeepSpeed (its engine steps at every backward); "
                "remove it and use training.gradient_accumulation_steps"
            )

    def _refuse_conflicts(self, facts: StageFacts) -> None:
        """`ValueError` with the first of `align.losses.term_conflicts` (the check recipes get at validation)."""
        conflicts = term_conflicts(self.loss_terms, facts)
        if conflicts:
            raise ValueError(f"{'.'.join(conflicts[0].key)}: {conflicts[0].message}")

    def _prepare_models(self) -> None:
        """Every model this trainer runs — the policy (its base model under PEFT) and a separate reference model, as
        accelerate's wrappers hold them — gets the completion-only log-prob path, and per-segment attention when
        batches are packed. Idempotent (both patches return at once on a patched model): it runs before trl's
        precompute pass and again once trl's `__init__` is done, and patches each model once."""
        for model in (self.model, self.ref_model):
            if model is None:
                continue
            module = self.accelerator.unwrap_model(model)
            base = module.get_base_model() if hasattr(module, "get_base_model") else module
            add_completion_logps(base)
            if self.batch_layout == "packed":
                use_segment_attention(base)

    def _precompute_ref_logps(self, dataset, name: str, batch_size: int):
        """trl's reference precompute, on prepared models. trl runs it inside its own `__init__` (before this class's
        `__init__` can prepare anything after it) and in `evaluate`, with the policy or a reference model it has just
        built, and it calls `compute_ref_log_probs`, which needs align's log-prob path: so prepare first."""
        self._prepare_models()
        return super()._precompute_ref_logps(dataset, name, batch_size)

    def _collator(self, config, tokenizer) -> MultiNegativeCollator | PackedPreferenceCollator:
        """The packed collator, or trl's preference collator settings in the collator that also takes K negatives."""
        if self.batch_layout == "packed":
            return PackedPreferenceCollator(max_length=config.max_length, truncation_mode=config.truncation_mode)
        pad_token = config.pad_token or tokenizer.pad_token or tokenizer.eos_token
        return MultiNegativeCollator(
            pad_token_id=tokenizer.convert_tokens_to_ids(pad_token),
            max_length=config.max_length,
            truncation_mode=config.truncation_mode,
            pad_to_multiple_of=config.pad_to_multiple_of,
        )

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        """trl's tokenisation (rows with K rejected answers: `tokenize_multi_negative`), plus each row's length in
        tokens (prompt + longest answer) when the sampler groups batches by length."""
        tokenized = self._tokenize(dataset, processing_class, args, dataset_name)
        column = args.length_column_name
        if args.train_sampling_strategy == "group_by_length" and column not in tokenized.column_names:
            tokenized = tokenized.map(lambda row: {column: row_length(row)}, desc=f"Measuring {dataset_name} rows")
        return tokenized

    def _set_signature_columns_if_needed(self):
        """trl's columns, plus the length column the length-grouped sampler reads (else it is dropped first)."""
        super()._set_signature_columns_if_needed()
        columns = signature_columns(self)
        if self.args.length_column_name not in columns:
            set_signature_columns(self, [*columns, self.args.length_column_name])

    def _tokenize(self, dataset, processing_class, args, dataset_name):
        if "prompt_ids" in dataset.column_names or not is_multi_negative(dataset[0]):
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)
        tokenized = dataset.map(
            tokenize_multi_negative,
            fn_kwargs={"processing_class": processing_class, "eos_token": trainer_tokenizer(self).eos_token},
            remove_columns=dataset.column_names,
            desc=f"Tokenizing {dataset_name} dataset ({len(dataset[0]['rejected'])} rejected answers per prompt)",
        )
        if args.max_length is not None and args.truncation_mode == "keep_start":
            # As trl does for pairs: a prompt that fills max_length leaves no completion token to learn from.
            tokenized = tokenized.filter(lambda example: len(example["prompt_ids"]) < args.max_length)
        return tokenized

    @staticmethod
    def _completion_logps(model, inputs, router_aux_loss: bool = False) -> CompletionLogps:
        """Completion log-probs of the (2B,) rows: chosen rows first, then rejected (trl's batch layout); with
        `router_aux_loss` (padded batches of MoE models), the router load-balancing loss too."""
        if is_packed(inputs):
            packed = PackedBatch.from_inputs(inputs)
            return model(
                input_ids=packed.input_ids, position_ids=packed.position_ids, completion_logps=True, packed=packed
            )
        model_kwargs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "position_ids")}
        return model(
            **model_kwargs,
            completion_mask=inputs["completion_mask"],
            completion_logps=True,
            router_aux_loss=router_aux_loss,
        )

    def compute_ref_log_probs(self, model, inputs):
        """Reference log-probs (chosen, rejected), each (B,); see `_reference_completion`.

        Replaces trl's version (also used by its precompute pass) to score only completion positions.
        """
        return split_chosen_rejected(self._reference_completion(model, inputs).logps, _rejected_per_prompt(inputs))

    def _reference_completion(self, model, inputs) -> CompletionLogps:
        """The reference's completion log-probs: the policy with adapters off, or the frozen `ref` adapter."""
        adapter = contextlib.nullcontext()
        if self.ref_model is None and hasattr(self.model, "peft_config"):
            unwrapped = self.accelerator.unwrap_model(self.model)
            adapter = use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None)
        reference = model if self.ref_model is None else self.ref_model
        with torch.no_grad(), adapter, self.accelerator.autocast():
            return self._completion_logps(reference, inputs)

    def _loss_batch(self, model, inputs) -> tuple[LossInputs, torch.Tensor | None]:
        """The losses' inputs for this step (policy, reference if any loss reads it, lengths, shared-prefix sums if
        a loss reads them), and the policy's MoE router load-balancing loss when trl would add it (else None)."""
        k = _rejected_per_prompt(inputs)
        if self.uses_shared_prefix:
            self._refuse_conflicts(StageFacts(rejected_per_prompt=k))
        policy = self._completion_logps(model, inputs, router_aux_loss=self.router_aux_loss_coef != 0.0)
        reference = None
        if self.uses_reference and not precomputes_reference(self):
            reference = self._reference_completion(model, inputs)
        policy_chosen, policy_rejected = split_chosen_rejected(policy.logps, k)
        chosen_lengths, rejected_lengths = split_chosen_rejected(policy.lengths, k)
        ref_chosen = ref_rejected = None
        if self.uses_reference and precomputes_reference(self):
            ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        elif reference is not None:
            ref_chosen, ref_rejected = split_chosen_rejected(reference.logps, k)
        shared = [None] * 4
        if self.uses_shared_prefix:
            shared[:2] = shared_prefix_logps(policy.per_token, policy.mask)
            if reference is not None:  # never precomputed: term_conflicts refuses cached sums for these losses
                shared[2:] = shared_prefix_logps(reference.per_token, reference.mask)
        loss_inputs = LossInputs(
            policy_chosen_logps=policy_chosen,
            policy_rejected_logps=policy_rejected,
            chosen_lengths=chosen_lengths,
            rejected_lengths=rejected_lengths,
            ref_chosen_logps=ref_chosen,
            ref_rejected_logps=ref_rejected,
            policy_chosen_shared_logps=shared[0],
            policy_rejected_shared_logps=shared[1],
            ref_chosen_shared_logps=shared[2],
            ref_rejected_shared_logps=shared[3],
        )
        return loss_inputs, policy.aux_loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        """trl's step, or, for a packed batch over `micro_batch_tokens`, one step per group of rows with gradients
        accumulated: each part's loss is its rows' share of the batch mean, and metrics are computed once over all
        parts. Under DDP/FSDP gradients are synchronised only by the last part."""
        parts = self._micro_batches(inputs) if self.micro_batch_tokens and is_packed(inputs) else []
        if len(parts) <= 1:
            return super().training_step(model, inputs, num_items_in_batch)
        self._micro = MicroBatchState(rows=PackedBatch.from_inputs(inputs).rows)
        try:
            total = None
            for index, part in enumerate(parts):
                self._micro.share = PackedBatch.from_inputs(part).rows / self._micro.rows
                last = index == len(parts) - 1
                with contextlib.nullcontext() if last else self.accelerator.no_sync(model):
                    loss = super().training_step(model, part, num_items_in_batch)
                total = loss if total is None else total + loss
            self._log_metrics("train", *self._micro.joined())
        finally:
            self._micro = None
        return total

    def _micro_batches(self, inputs) -> list[dict]:
        """The packed batch in parts of at most `micro_batch_tokens`, as many on every process: each rank counts its
        own parts, all take the largest count (FSDP runs collectives in every pass, so counts must match)."""
        own = len(token_groups(PackedBatch.from_inputs(inputs).segment_lengths.tolist(), self.micro_batch_tokens))
        wanted = own
        if self.accelerator.num_processes > 1:
            counts = self.accelerator.gather(torch.tensor([own], device=self.accelerator.device))
            wanted = int(counts.max())
        if wanted != own:
            logger.info(
                "micro-batches: %d parts of <= %d tokens here, split into %d to match the other processes",
                own,
                self.micro_batch_tokens,
                wanted,
            )
        return split_packed(inputs, self.micro_batch_tokens, wanted)

    def _compute_loss(self, model, inputs, return_outputs=False):
        mode = "train" if self.model.training else "eval"
        if mode == "train":
            self.rows_seen.update(row_fingerprints(inputs))
        loss_inputs, aux_loss = self._loss_batch(model, inputs)
        result = combine_losses(self.loss_terms, loss_inputs)
        detached = metric_inputs(loss_inputs)
        if self._micro is not None and mode == "train":
            self._micro.add(result, detached)
            loss = result.losses.mean() * self._micro.share
        else:
            self._log_metrics(mode, result, detached)
            loss = result.losses.mean()
        if aux_loss is not None:
            # As trl's DPOTrainer: the MoE load-balancing loss of the policy forward, weighted, added to the batch loss
            # (micro-batches never carry it: MoE models with the router loss on use the padded layout).
            loss = loss + self.router_aux_loss_coef * aux_loss
            aux = self.accelerator.gather_for_metrics(aux_loss.detach()).mean().item()
            metrics_store(self, mode)["aux_loss"].append(aux)
        return (loss, None) if return_outputs else loss

    def _log_metrics(self, mode: str, result: CombinedLoss, inputs: list[torch.Tensor]) -> None:
        metrics = preference_metrics(result, *inputs, gather=self.accelerator.gather_for_metrics)
        for key, value in metrics.items():
            metrics_store(self, mode)[key].append(value)


def _rejected_per_prompt(inputs) -> int:
    """K, the rejected answers per prompt, of a collated batch in either layout."""
    return (
        int(PackedBatch.from_inputs(inputs).rejected_per_prompt) if is_packed(inputs) else rejected_per_prompt(inputs)
    )


def _own_copy(config):
    """A copy of the caller's trainer config for trl to keep and change (align turns off precomputing for losses
    without a reference; trl writes into it too, e.g. `gradient_checkpointing_kwargs`), so the caller's is never
    modified. `copy.copy` keeps what `TrainingArguments.__post_init__` derived (re-running it, as
    `dataclasses.replace` would, is not safe on its own output); top-level dicts and lists are copied as well."""
    copied = copy.copy(config)
    for name, value in vars(config).items():
        if isinstance(value, (dict, list)):
            setattr(copied, name, copy.copy(value))
    return copied

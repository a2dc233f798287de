"""`FastSftTrainer`: trl's `SFTTrainer` with packed rows and completion-only log-probs.

Everything but collation and the loss step is trl's: tokenisation (prompt → completion rows, `completion_only_loss`,
truncation to `max_length`), the optimizer, logging, checkpoints. In the packed layout (`align.training.packing`,
one sequence per row) a batch is one row of its real tokens, attention kept per sequence
(`align.training.segment_attention`), and only the hidden states that predict a trained token go through the LM
head, in chunks (`align.training.head`) — no [batch × length × vocabulary] logits. The loss is trl's: the summed NLL
of the trained tokens divided by trl's count (`num_items_in_batch`, over all gradient-accumulation batches, or the
batch's own count), so loss and gradients equal stock `SFTTrainer`'s within float rounding (tested to 1e-5).

Where the packed path cannot reproduce a setting exactly (trl's own `packing`, `padding_free`, `assistant_only_loss`,
liger kernels, `loss_type: dft`, label smoothing, a `compute_loss_func`, metrics that read the logits) or the model
family is not proven packable, the trainer is stock `SFTTrainer` (padded layout), with one log line saying why.

Metrics: `num_tokens` is counted as trl counts it (real tokens seen). `entropy` and `mean_token_accuracy` are not
logged in the packed layout: both need every trained position's whole softmax, a second pass over the vocabulary
that the frozen-head path exists to avoid; the loss is logged as usual.
"""

from __future__ import annotations

import contextlib
import logging

import torch
from accelerate.utils import DistributedType
from trl import SFTTrainer

from align.errors import AlignError
from align.training.families import packed_refusal, router_aux_loss_coef
from align.training.layout import COMPLETION_HEAD, LayoutChoice
from align.training.logprobs import add_completion_logps
from align.training.packed_batch import PackedBatch, is_packed
from align.training.packing import PackedCompletionCollator, split_packed, token_groups
from align.training.private_api import (
    SFT_PRIVATE_INSTANCE_ATTRIBUTES,
    add_train_tokens,
    check_trainer_attributes,
    metrics_store,
    train_tokens,
)
from align.training.segment_attention import use_segment_attention

logger = logging.getLogger(__name__)

# What computes the log-probs of an SFT stage in the padded layout: stock trl, its own loss.
STOCK_SFT = "trl SFTTrainer"


def sft_packed_refusal(config, trainer_kwargs: dict) -> str | None:
    """Why an `SFTConfig` (and the trainer's other arguments) cannot train packed exactly (one clause), or None."""
    reasons = (
        (config.packing, "trl's own `packing` is on (it lays out its own blocks)"),
        (config.padding_free, "trl's `padding_free` is on"),
        (config.assistant_only_loss, "`assistant_only_loss` is on"),
        (config.use_liger_kernel, "`use_liger_kernel` is on"),
        (config.loss_type != "nll", f"loss_type {config.loss_type!r} is not the plain NLL"),
        (config.label_smoothing_factor, "label smoothing needs the full logits"),
        (trainer_kwargs.get("compute_loss_func") is not None, "a `compute_loss_func` reads the full logits"),
        (trainer_kwargs.get("compute_metrics") is not None, "`compute_metrics` reads the full logits"),
        (trainer_kwargs.get("preprocess_logits_for_metrics") is not None, "metrics read the full logits"),
    )
    return next((why for refused, why in reasons if refused), None)


def choose_sft_layout(model, requested: str, config, trainer_kwargs: dict) -> LayoutChoice:
    """The layout of an SFT stage on `model` (a `PreTrainedModel`, not the PEFT wrapper): packed where the family is
    proven packable and the settings are reproducible (`sft_packed_refusal`), else stock `SFTTrainer`; one log line
    says what was given up and why."""
    if requested != "packed":
        return LayoutChoice("padded", None, STOCK_SFT)
    coef = router_aux_loss_coef(model, config.router_aux_loss_coef)
    why = packed_refusal(model, coef) or sft_packed_refusal(config, trainer_kwargs)
    if why is not None:
        logger.warning(
            "packed SFT batches are off for %s: %s; training with stock trl SFTTrainer", type(model).__name__, why
        )
        return LayoutChoice("padded", why, STOCK_SFT)
    return LayoutChoice("packed", None, COMPLETION_HEAD)


class FastSftTrainer(SFTTrainer):
    """An `SFTTrainer` that trains packed rows on completion-only log-probs where that is exact (see the module).

    Args (beyond `SFTTrainer`'s):
        batch_layout: `packed` (default): rows packed without padding, the completion-only head; `padded`: stock
            `SFTTrainer` in every respect. The layout actually used is `self.layout` (packed falls back to padded,
            with a log line, where it is not exact).
        micro_batch_tokens: packed layout only: a batch of more packed tokens than this runs as several
            forward/backward passes over groups of whole rows, gradients accumulated (same loss and gradients, less
            activation memory). None: one pass per batch.
    """

    def __init__(self, *args, batch_layout: str = "packed", micro_batch_tokens: int | None = None, **kwargs):
        if batch_layout not in ("packed", "padded"):
            raise ValueError(f"batch_layout must be packed or padded, not {batch_layout!r}")
        if micro_batch_tokens is not None and (batch_layout != "packed" or micro_batch_tokens < 1):
            raise ValueError("micro_batch_tokens needs batch_layout packed and a positive token count")
        model, config = kwargs.get("model", args[0] if args else None), kwargs.get("args")
        if isinstance(model, str) or config is None or kwargs.get("data_collator") is not None:
            raise ValueError("FastSftTrainer needs a loaded model and an SFTConfig, and lays out batches itself")
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.layout = choose_sft_layout(base, batch_layout, config, kwargs)
        self.batch_layout = self.layout.batch_layout
        self.micro_batch_tokens = micro_batch_tokens if self.batch_layout == "packed" else None
        self._batch_tokens: int | None = None  # the whole batch's trained tokens while a split batch runs its parts
        # trl builds its own collator (and sets the pad token on tokenizer and model as stock does); it is replaced
        # below once trl's __init__ is done.
        super().__init__(*args, **kwargs)
        if self.batch_layout != "packed":
            return
        check_trainer_attributes(self, SFT_PRIVATE_INSTANCE_ATTRIBUTES)
        self.data_collator = PackedCompletionCollator()
        module = self.accelerator.unwrap_model(self.model)
        base = module.get_base_model() if hasattr(module, "get_base_model") else module
        add_completion_logps(base)
        use_segment_attention(base)
        if self.micro_batch_tokens and self.accelerator.distributed_type == DistributedType.DEEPSPEED:
            raise AlignError(
                "micro_batch_tokens cannot split batches under DeepSpeed (its engine steps at every backward); "
                "remove it and use training.gradient_accumulation_steps"
            )

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device):
        """transformers' count of trained tokens over a step's batches (the SFT loss divides by it). A packed batch
        has no `labels`: its trained tokens (`target_ids`, never -100) are handed over as already-shifted labels, so
        transformers counts them and reduces the count across processes exactly as it does trl's labels."""
        if not batch_samples or not is_packed(batch_samples[0]):
            return super()._get_num_items_in_batch(batch_samples, device)
        targets = [PackedBatch.from_inputs(batch).target_ids for batch in batch_samples]
        as_labels = [{"labels": ids, "shift_labels": ids} for ids in targets]
        return super()._get_num_items_in_batch(as_labels, device)

    def training_step(self, model, inputs, num_items_in_batch=None):
        """trl's step, or, for a packed batch over `micro_batch_tokens`, one step per group of rows with gradients
        accumulated: every part divides its summed NLL by the whole batch's count, so the parts add up to the batch's
        loss. Under DDP/FSDP gradients are synchronised only by the last part."""
        parts = self._micro_batches(inputs) if self.micro_batch_tokens and is_packed(inputs) else []
        if len(parts) <= 1:
            return super().training_step(model, inputs, num_items_in_batch)
        self._batch_tokens = len(PackedBatch.from_inputs(inputs).target_ids)
        try:
            total = None
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                with contextlib.nullcontext() if last else self.accelerator.no_sync(model):
                    loss = super().training_step(model, part, num_items_in_batch)
                total = loss if total is None else total + loss
        finally:
            self._batch_tokens = None
        return total

    def _micro_batches(self, inputs) -> list[dict]:
        """The packed batch in parts of at most `micro_batch_tokens`, as many on every process (FSDP runs collectives
        in every pass, so counts must match: each rank counts its own, all take the largest)."""
        own = len(token_groups(PackedBatch.from_inputs(inputs).segment_lengths.tolist(), self.micro_batch_tokens))
        wanted = own
        if self.accelerator.num_processes > 1:
            wanted = int(self.accelerator.gather(torch.tensor([own], device=self.accelerator.device)).max())
        return split_packed(inputs, self.micro_batch_tokens, wanted)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """trl's SFT loss (summed NLL of the trained tokens ÷ trl's token count) of a packed batch; trl's own
        `compute_loss` for anything else."""
        if not is_packed(inputs):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if return_outputs:
            raise AlignError("the packed SFT layout computes no logits to return; set `batch_layout: padded`")
        packed = PackedBatch.from_inputs(inputs)
        logps = model(
            input_ids=packed.input_ids, position_ids=packed.position_ids, completion_logps=True, packed=packed
        ).logps
        count = num_items_in_batch
        if count is None:
            count = self._batch_tokens if self._batch_tokens is not None else len(packed.target_ids)
        # As trl: clamped so a batch without trained tokens gives a finite zero, not 0 / 0.
        loss = -logps.sum() / torch.as_tensor(count, device=logps.device).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            # As trl: the count spans every process, and DDP averages gradients across them.
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())
        self._log_tokens(packed)
        return loss

    def _log_tokens(self, packed: PackedBatch) -> None:
        """trl's `num_tokens` metric: real tokens trained on so far (trl counts the padded batch's attention mask;
        a packed row holds exactly those tokens)."""
        mode = "train" if self.model.training else "eval"
        if mode == "train":
            local = torch.tensor(packed.input_ids.size(1), device=packed.input_ids.device)
            tokens = self.accelerator.gather_for_metrics(local).sum().item()
            add_train_tokens(self, tokens // self.get_tp_size())
        metrics_store(self, mode)["num_tokens"] = [train_tokens(self)]

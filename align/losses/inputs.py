"""`LossInputs`: the tensors every registered loss is called with, in one dataclass.

The trainer builds it once per step (`ContrastiveTrainer._loss_batch`); each loss reads the fields it needs and
raises a `ValueError` naming any it needs that the trainer did not compute (None). A misspelt field is a `TypeError`
when the dataclass is built, and a misspelt hyper-parameter one when the loss is called, so neither is ignored.
This module imports torch only: no transformers, no trl.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class LossInputs:
    """Summed completion log-probs (nats) and completion token counts of a batch of B prompts.

    With K rejected answers per prompt the rejected tensors are (B, K) instead of (B,). Fields a stage does not
    compute are None: the reference's for reference-free terms, the shared-prefix sums unless a term
    `needs_shared_prefix`.
    """

    policy_chosen_logps: torch.Tensor
    """(B,) the policy's log-probs summed over the chosen completion's tokens."""
    policy_rejected_logps: torch.Tensor
    """(B,) or (B, K): the same for the rejected completion(s)."""
    chosen_lengths: torch.Tensor | None = None
    """(B,) chosen completion token counts (int or float)."""
    rejected_lengths: torch.Tensor | None = None
    """(B,) or (B, K) rejected completion token counts."""
    ref_chosen_logps: torch.Tensor | None = None
    """(B,) the reference model's summed chosen log-probs."""
    ref_rejected_logps: torch.Tensor | None = None
    """(B,) or (B, K) the reference model's summed rejected log-probs."""
    policy_chosen_shared_logps: torch.Tensor | None = None
    """(B,) the policy's log-probs summed over the first min(len_c, len_r) chosen completion tokens (pairs only)."""
    policy_rejected_shared_logps: torch.Tensor | None = None
    """(B,) the same over the rejected completion's first min(len_c, len_r) tokens."""
    ref_chosen_shared_logps: torch.Tensor | None = None
    """(B,) the reference's counterpart of `policy_chosen_shared_logps`."""
    ref_rejected_shared_logps: torch.Tensor | None = None
    """(B,) the reference's counterpart of `policy_rejected_shared_logps`."""

    @property
    def several_negatives(self) -> bool:
        """Whether the rejected tensors are (B, K)."""
        return self.policy_rejected_logps.dim() == 2

    def as_pairs(self) -> LossInputs:
        """K negatives as B·K pairs (chosen, rejected_k): chosen tensors (B,) repeated to (B, K), then every
        per-answer tensor flattened to (B·K,), pair b·K + k holding row b's k-th negative. Shared-prefix sums are
        defined for one pair per row only and are left as they are."""
        batch_size, k = self.policy_rejected_logps.shape

        def chosen(values: torch.Tensor | None) -> torch.Tensor | None:
            return None if values is None else values.unsqueeze(1).expand(batch_size, k).reshape(-1)

        def rejected(values: torch.Tensor | None) -> torch.Tensor | None:
            return None if values is None else values.reshape(-1)

        return replace(
            self,
            policy_chosen_logps=chosen(self.policy_chosen_logps),
            ref_chosen_logps=chosen(self.ref_chosen_logps),
            chosen_lengths=chosen(self.chosen_lengths),
            policy_rejected_logps=rejected(self.policy_rejected_logps),
            ref_rejected_logps=rejected(self.ref_rejected_logps),
            rejected_lengths=rejected(self.rejected_lengths),
        )

    def reference(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(ref_chosen_logps, ref_rejected_logps); `ValueError` if the reference's were not computed."""
        if self.ref_chosen_logps is None or self.ref_rejected_logps is None:
            raise ValueError("this loss needs reference log-probs (ref_chosen_logps, ref_rejected_logps)")
        return self.ref_chosen_logps, self.ref_rejected_logps

    def lengths(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(chosen_lengths, rejected_lengths) as given; `ValueError` if they were not."""
        if self.chosen_lengths is None or self.rejected_lengths is None:
            raise ValueError("this loss needs completion lengths (chosen_lengths, rejected_lengths)")
        return self.chosen_lengths, self.rejected_lengths

    def shared_prefix(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(policy chosen, policy rejected, ref chosen, ref rejected) shared-prefix sums; `ValueError` naming the
        missing ones."""
        names = (
            "policy_chosen_shared_logps",
            "policy_rejected_shared_logps",
            "ref_chosen_shared_logps",
            "ref_rejected_shared_logps",
        )
        values = tuple(getattr(self, name) for name in names)
        missing = [name for name, value in zip(names, values, strict=True) if value is None]
        if missing:
            raise ValueError(
                f"this loss needs shared-prefix log-probs {missing}: for each response, the summed log-probs of its "
                "first min(len_c, len_r) completion tokens, under the policy and the reference (the trainer computes "
                "these for losses registered with needs_shared_prefix=True)"
            )
        return values

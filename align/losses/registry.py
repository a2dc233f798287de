"""The loss registry: losses are pure functions of summed log-probs, registered by name.

Every loss has the signature `fn(inputs: LossInputs, *, <hyper-parameter>=<default>, ...) -> LossOutput`: one
`align.losses.inputs.LossInputs` (the batch's tensors; the loss reads the fields it needs) and keyword-only
hyper-parameters, each with its default, so the trainer can call any of them (or a weighted sum of several) without
knowing which. Registration refuses any other signature (a `**kwargs` would swallow misspelt hyper-parameters).
This module imports torch only: no transformers, no trl.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass
class LossOutput:
    """Per-example losses and the implicit rewards behind them.

    losses: (B,), differentiable. chosen_rewards: (B,), detached. rejected_rewards: (B,) or (B, K), detached.
    """

    losses: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor


LossFn = Callable[..., LossOutput]


@dataclass(frozen=True)
class Interval:
    """The values a loss parameter may take: `low`..`high`, each end open (excluded) or closed."""

    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def __str__(self) -> str:
        return f"{'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"


#: Every loss's β scales a log-ratio: 0 makes the loss constant (nothing learnt), a negative β trains towards the
#: rejected answers. A loss with a `beta` parameter gets this range unless it registers another.
POSITIVE = Interval(0.0, open_low=True, open_high=True)
UNIT = Interval(0.0, 1.0)


@dataclass(frozen=True)
class LossInfo:
    """A registered loss: its function, whether it reads reference log-probs, its hyper-parameter defaults, whether
    it takes K negatives whole, and whether its rewards are implicit preference rewards (what `rewards/*` and the
    `min_pair_accuracy` gate report; an SFT term's mean log-probs are not)."""

    name: str
    fn: LossFn
    needs_reference: bool
    defaults: dict
    multi_negative: bool = False
    provides_rewards: bool = True
    needs_shared_prefix: bool = False
    ranges: dict = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """The first line of the docstring."""
        return (inspect.getdoc(self.fn) or "").splitlines()[0] if self.fn.__doc__ else ""


_LOSSES: dict[str, LossInfo] = {}


def _hyper_parameters(name: str, fn: LossFn) -> dict:
    """The loss's hyper-parameters and their defaults: every parameter after the `LossInputs` one. `ValueError` unless
    the signature is one positional parameter, then keyword-only parameters that all have defaults."""
    params = list(inspect.signature(fn).parameters.values())
    if not params or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        raise ValueError(f"loss {name!r} must take its LossInputs as its first, positional parameter")
    rest = params[1:]
    wrong = [p.name for p in rest if p.kind is not p.KEYWORD_ONLY or p.default is p.empty]
    if wrong:
        raise ValueError(
            f"loss {name!r}: {wrong} must be keyword-only hyper-parameters with defaults (after `*`; no **kwargs, "
            "which would swallow misspelt hyper-parameters)"
        )
    return {p.name: p.default for p in rest}


def register_loss(
    name: str,
    *,
    needs_reference: bool,
    multi_negative: bool = False,
    provides_rewards: bool = True,
    needs_shared_prefix: bool = False,
    ranges: dict[str, Interval] | None = None,
) -> Callable[[LossFn], LossFn]:
    """Register a loss under `name`.

    `needs_reference=False` lets the trainer skip the reference forward pass. `multi_negative=True` says the function
    itself takes rejected tensors of shape (B, K); other losses see K negatives as K pairs sharing the chosen answer
    (see `align.losses.combine`). `provides_rewards=False` for a term whose rewards are not preference rewards (the
    SFT term): a combined loss never reports them when another term has real ones. `needs_shared_prefix=True`: the
    function also reads the summed log-probs of each pair's shared prefix (the `*_shared_logps` fields of
    `LossInputs`), so it takes pairs only and no cached reference sums. `ranges`: the allowed values of
    hyper-parameters (`Interval`), checked when a recipe sets them; `beta` is `POSITIVE` unless given.
    """

    def wrap(fn: LossFn) -> LossFn:
        if name in _LOSSES:
            raise ValueError(f"loss {name!r} is already registered")
        defaults = _hyper_parameters(name, fn)
        allowed = ({"beta": POSITIVE} if "beta" in defaults else {}) | dict(ranges or {})
        unknown = set(allowed) - set(defaults)
        if unknown:
            raise ValueError(f"loss {name!r}: ranges for parameters it does not have: {sorted(unknown)}")
        _LOSSES[name] = LossInfo(
            name, fn, needs_reference, defaults, multi_negative, provides_rewards, needs_shared_prefix, allowed
        )
        return fn

    return wrap


def unregister_loss(name: str) -> LossInfo:
    """Remove `name` from the registry and return its entry (`KeyError` if there is none): a test that registers a
    loss of its own undoes it, so the registry every other test sees does not depend on test order."""
    info = loss_info(name)
    del _LOSSES[name]
    return info


def loss_names() -> list[str]:
    """Every registered loss name, sorted."""
    return sorted(_LOSSES)


def loss_info(name: str) -> LossInfo:
    """The registry entry for `name`; `KeyError` with the known names if there is none."""
    try:
        return _LOSSES[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; known: {', '.join(loss_names())}") from None


def get_loss(name: str) -> LossFn:
    """The loss function registered as `name`."""
    return loss_info(name).fn


def as_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """Completion lengths as floats of at least 1 (guards per-token averages against empty completions)."""
    return lengths.to(torch.float32).clamp(min=1.0)

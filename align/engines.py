"""Sharded engines (FSDP2, DeepSpeed ZeRO-3) as `accelerate launch` requests them, on GPUs and on CPUs.

`accelerate launch --config_file recipes/accelerate/fsdp.yaml` (or `zero3.yaml`) tells the processes which engine to
use through environment variables. accelerate only honours them on an accelerator device: on a CPU-only machine a
run "under FSDP" silently trained plain data-parallel copies, and DeepSpeed was dropped the same way. Both engines
work over gloo on CPUs, which is how CI tests them, so here:

- DeepSpeed needs only the process state created without accelerate's `cpu` flag and with the gloo backend
  (`cpu_engine`, used by `align.runtime.process_state` and the trainer config defaults);
- FSDP is switched on after accelerate has built its state (`_fsdp_on_cpu`, with `_distributed_on_cpu` so the
  gloo state counts as distributed): accelerate's own switch lists device families and CPUs are not among them.

Everything align relies on accelerate's and DeepSpeed's internals for, for this, lives in this module.
"""

from __future__ import annotations

import functools
import os

ENGINE_FLAGS = {"fsdp": "ACCELERATE_USE_FSDP", "deepspeed": "ACCELERATE_USE_DEEPSPEED"}


def requested_engine() -> str | None:
    """`fsdp` or `deepspeed` when the launcher asked for it (accelerate's environment flags), else None."""
    for engine, flag in ENGINE_FLAGS.items():
        if os.environ.get(flag, "false").lower() == "true":
            return engine
    return None


def cpu_engine() -> str | None:
    """The sharded engine of a multi-process run on a machine without CUDA, else None."""
    from align.runtime import multi_process_cpu

    return requested_engine() if multi_process_cpu() else None


def enable_cpu_engines() -> None:
    """Make accelerate honour a requested FSDP on a multi-process CPU run (idempotent; a no-op otherwise)."""
    if cpu_engine() != "fsdp":
        return
    from accelerate.state import AcceleratorState, PartialState

    if not getattr(PartialState.__init__, "_align_cpu_fsdp", False):
        PartialState.__init__ = _distributed_on_cpu(PartialState.__init__)
        AcceleratorState.__init__ = _fsdp_on_cpu(AcceleratorState.__init__)


def _distributed_on_cpu(init):
    """Wrap `PartialState.__init__`: a gloo state of several CPU processes created without the `cpu` flag is
    multi-CPU (accelerate calls it NO, which turns its barriers into no-ops)."""

    @functools.wraps(init)
    def wrapped(self, *args, **kwargs):
        init(self, *args, **kwargs)
        from accelerate.utils import DistributedType

        if self.distributed_type == DistributedType.NO and self.num_processes > 1 and self.device.type == "cpu":
            self.distributed_type = DistributedType.MULTI_CPU

    wrapped._align_cpu_fsdp = True
    return wrapped


def _fsdp_on_cpu(init):
    """Wrap `AcceleratorState.__init__`: where accelerate left a multi-CPU state without FSDP only because the device
    is a CPU, apply the FSDP plugin it was given as its device branch does."""

    @functools.wraps(init)
    def wrapped(self, *args, fsdp_plugin=None, **kwargs):
        init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        from accelerate.state import PartialState
        from accelerate.utils import DistributedType

        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            if self.mixed_precision != "no":
                fsdp_plugin.set_mixed_precision(self.mixed_precision)
            self.fsdp_plugin = fsdp_plugin
            self.distributed_type = DistributedType.FSDP
            PartialState().distributed_type = DistributedType.FSDP  # the process state all instances share

    return wrapped


def is_zero3_param(tensor) -> bool:
    """A parameter partitioned by DeepSpeed ZeRO-3: its `data` is an empty placeholder outside a gather."""
    return hasattr(tensor, "ds_id")


def _is_dtensor(tensor) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(tensor, DTensor)


def is_sharded_param(tensor) -> bool:
    """A parameter whose whole value no single process holds: an FSDP2 DTensor or a DeepSpeed ZeRO-3 partition."""
    return _is_dtensor(tensor) or is_zero3_param(tensor)


def gathered_adapter_state(model, adapter: str = "default") -> dict | None:
    """The whole tensors of `adapter`'s parameters in a sharded model (FSDP2 DTensors, ZeRO-3 partitions), on the
    CPU, keyed as in `model.state_dict()`; None when nothing is sharded (save as usual).

    A collective: every process must call it, in the same order (only the main process then writes). Only the
    adapter is gathered, never the frozen base model, so it costs megabytes however large the base is.
    """
    import torch

    params = [(name, p) for name, p in model.named_parameters() if adapter in name.split(".")]
    if not any(_is_dtensor(p) or is_zero3_param(p) for _, p in params):
        return None
    zero3 = [p for _, p in params if is_zero3_param(p)]
    gather = _zero3_gather(zero3) if zero3 else _nullcontext()
    with gather, torch.no_grad():
        # full_tensor() is itself a collective; named_parameters() gives every rank the same order.
        return {name: (p.full_tensor() if _is_dtensor(p) else p.data).detach().to("cpu").clone() for name, p in params}


def _zero3_gather(params):
    """DeepSpeed's gather of ZeRO-3 partitions for reading (no rank modifies them)."""
    import deepspeed

    return deepspeed.zero.GatheredParameters(params, modifier_rank=None)


def _nullcontext():
    import contextlib

    return contextlib.nullcontext()

"""`head_weights`: the frozen-head log-prob path reads whole head weights under sharded engines (one process, real
DTensor and real DeepSpeed ZeRO-3 partitions, in a subprocess so no process group leaks into other tests)."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.integration.launch import free_port

SCRIPT = textwrap.dedent(
    """
    import torch, torch.distributed as dist
    from align.training.head import chunked_target_logps, head_weights

    torch.manual_seed(0)
    hidden, targets = torch.randn(10, 8), torch.randint(0, 32, (10,))
    plain = torch.nn.Linear(8, 32).requires_grad_(False)
    expected = chunked_target_logps(hidden, targets, plain, chunk=4)

    # FSDP2 keeps a separately sharded head as DTensor shards outside its own forward.
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor
    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (1,))
    sharded = torch.nn.Linear(8, 32).requires_grad_(False)
    for name in ("weight", "bias"):
        tensor = distribute_tensor(getattr(plain, name).detach().clone(), mesh, [Shard(0)])
        setattr(sharded, name, torch.nn.Parameter(tensor, requires_grad=False))
    try:
        chunked_target_logps(hidden, targets, sharded, chunk=4)
        print("DTENSOR_READ_DIRECTLY_WORKS")
    except Exception:
        pass
    with head_weights(sharded) as head:
        got = chunked_target_logps(hidden, targets, sharded, chunk=4, head=head)
    print("DTENSOR", (got - expected).abs().max().item())

    # DeepSpeed ZeRO-3: a partitioned parameter is an empty placeholder outside a gather.
    import deepspeed
    with deepspeed.zero.Init(config_dict_or_path={"train_micro_batch_size_per_gpu": 1,
                                                  "zero_optimization": {"stage": 3}}):
        partitioned = torch.nn.Linear(8, 32)
    partitioned.requires_grad_(False)
    with deepspeed.zero.GatheredParameters(list(partitioned.parameters()), modifier_rank=0):
        partitioned.load_state_dict(plain.state_dict())
    print("PLACEHOLDER", tuple(partitioned.weight.shape))
    with head_weights(partitioned) as head:
        got = chunked_target_logps(hidden, targets, partitioned, chunk=4, head=head)
    print("ZERO3", (got - expected).abs().max().item(), tuple(partitioned.weight.shape))
    """
)


@pytest.mark.slow
def test_head_weights_gathers_dtensor_and_zero3_heads():
    """Through `head_weights`, a frozen head held as DTensor shards (FSDP2) or as a ZeRO-3 partition gives the same
    log-probs as the plain head (≤1e-6), and the partition is back to its placeholder afterwards; read directly, the
    DTensor head fails and the ZeRO-3 one is empty. If this fails, packed/padded log-probs under FSDP2 or ZeRO-3 are
    computed from an empty or partial head (wrong losses, or a crash) or the gathered head stays in memory."""
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_RANK": "0",
        "DS_ACCELERATOR": "cpu",
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if line.split(" ")[0].isupper())
    assert "DTENSOR_READ_DIRECTLY_WORKS" not in result.stdout
    assert float(lines["DTENSOR"]) <= 1e-6
    assert lines["PLACEHOLDER"] == "(0,)"
    difference, shape_after = lines["ZERO3"].split(" ", 1)
    assert float(difference) <= 1e-6 and shape_after == "(0,)"

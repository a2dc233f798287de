"""The shipped accelerate configs parse with accelerate's own loader and say what their names promise."""

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file

CONFIGS = Path(__file__).resolve().parent.parent / "recipes" / "accelerate"
EXPECTED = {
    "single.yaml": ("NO", None),
    "ddp.yaml": ("MULTI_GPU", None),
    "fsdp.yaml": ("FSDP", None),
    "zero2.yaml": ("DEEPSPEED", 2),
    "zero3.yaml": ("DEEPSPEED", 3),
    "multi_node.yaml": ("MULTI_GPU", None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_loads_and_matches_its_name(name):
    """If this fails, `accelerate launch --config_file recipes/accelerate/<name>` would refuse or misbehave."""
    config = load_config_from_file(str(CONFIGS / name))
    distributed_type, zero_stage = EXPECTED[name]
    assert str(config.distributed_type).split(".")[-1] == distributed_type
    if zero_stage is not None:
        assert config.deepspeed_config["zero_stage"] == zero_stage
    if name == "fsdp.yaml":
        assert config.fsdp_config["fsdp_version"] == 2
    if name == "multi_node.yaml":
        # Machine 0's copy: the others change machine_rank (and the address) as its comments say.
        assert (config.num_machines, config.machine_rank, config.rdzv_backend) == (2, 0, "static")
        assert config.main_process_ip and config.main_process_port
    else:
        assert config.num_machines == 1


def test_every_shipped_config_is_covered():
    assert {p.name for p in CONFIGS.glob("*.yaml")} == set(EXPECTED)

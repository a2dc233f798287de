"""Sharded engines for real, on the CPU, launched as users launch them: the shipped FSDP2 and DeepSpeed ZeRO-3
accelerate configs (device keys only changed), and two machines simulated on loopback. Each run is compared with
one process training the same global batches: per-step losses and final adapters (whole shapes, values)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.integration.launch import (
    ACCELERATE,
    REPO,
    device_free_config,
    free_port,
    launch,
    one_process,
    run_together,
    step_rows,
    train_args,
)

pytestmark = pytest.mark.slow
RECIPE = "sft_then_dpo.yaml"  # warmup (sft, 24 rows) → concise (dpo + sft, 24 rows), the adapter carried
# Each rank packs its 4 rows (360-411 tokens each) into passes of at most 770 tokens: at step 1 rank 0 wants 4, rank 1
# 2 (the test checks the log line saying a rank split further), so the agreement on a count is exercised.
MICRO = "stages.concise.micro_batch_tokens=770"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def untied_model(tmp_path_factory) -> Path:
    """The tiny Llama, 128 wide, with an untied LM head of 1024 × 128 = 131k weights: above DeepSpeed's default
    persistence threshold (1e5), so ZeRO-3 partitions the head as it would a real model's."""
    from transformers import AutoModelForCausalLM

    from align.models import build_tiny_model

    corpus = (REPO / "data" / "concise" / "sft.jsonl").read_text(encoding="utf-8").splitlines()
    wide = build_tiny_model(tmp_path_factory.mktemp("wide") / "model", corpus=corpus, vocab_size=1024, hidden_size=128)
    model = AutoModelForCausalLM.from_pretrained(wide)
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(model.model.embed_tokens.weight.detach().clone())
    target = tmp_path_factory.mktemp("untied") / "model"
    model.save_pretrained(target)
    for path in wide.glob("tokenizer*"):
        shutil.copy(path, target / path.name)
    return target


@pytest.fixture(scope="module")
def one_process_run(untied_model, tmp_path_factory) -> Path:
    """The reference: one process, 8 rows per batch = the global batch of 2 processes × 4 rows. accelerate hands
    rank r the r-th of each pair of consecutive 4-row batches of the same (seeded) order, so step k trains the same
    8 rows either way; each rank's mean loss averaged over ranks is the 8-row mean."""
    out = tmp_path_factory.mktemp("one") / "out"
    result = one_process(train_args(RECIPE, untied_model, out, "training.per_device_train_batch_size=8"))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def _launch(config: Path, *args: str):
    return launch(["--config_file", str(config), "--main_process_port", str(free_port())], list(args))


def _adapter(out: Path, stage: str) -> dict[str, torch.Tensor]:
    """The saved adapter's tensors, read by peft's own loader."""
    from peft.utils import load_peft_weights

    return load_peft_weights(str(out / stage / "adapter"), device="cpu")


def assert_trains_like_one_process(out: Path, reference: Path, stdout: str, engine: str) -> float:
    """The run used `engine`, its per-step losses and both stages' adapters equal the reference's (every tensor its
    full shape), and it had one writer: each global step once in metrics.jsonl, world size 2 in the one summary, one
    "outputs in" line, no temporary files. Returns the largest difference (losses and adapter values)."""
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and [s["engine"] for s in summary["stages"]] == [engine, engine]
    assert [s["steps"] for s in summary["stages"]] == [3, 3]
    rows, expected = step_rows(out), step_rows(reference)
    assert [r["step"] for r in rows] == list(range(1, 7)) == [r["step"] for r in expected]
    worst = max(abs(a["loss"] - b["loss"]) for a, b in zip(rows, expected, strict=True))
    for stage in ("warmup", "concise"):
        got, want = _adapter(out, stage), _adapter(reference, stage)
        assert len(want) == 28 and sorted(got) == sorted(want)
        assert {k: v.shape for k, v in got.items()} == {k: v.shape for k, v in want.items()}, "adapter saved in shards"
        worst = max(worst, *((got[k] - want[k]).abs().max().item() for k in want))
    assert worst <= TOLERANCE, f"largest difference from one process: {worst:.3g}"
    assert stdout.count("outputs in") == 1
    assert not [p.name for p in out.rglob(".*")], "temporary files left behind"
    return worst


def test_fsdp2_with_micro_batches_trains_like_one_process(untied_model, one_process_run, tmp_path, capsys):
    """The shipped fsdp.yaml (FSDP2) on 2 CPU processes, sft → dpo, the dpo stage in ≤770-token passes whose natural
    counts differ between the ranks: no hang, the ranks agree on a count, and losses and both adapters equal one
    process training whole 8-row batches (≤1e-4), saved whole. If this fails, FSDP on CPUs silently ran plain DDP,
    sharded adapters were saved as shards, or unequal pass counts hung or desynchronised the collectives."""
    config = device_free_config("fsdp.yaml", tmp_path)
    out = tmp_path / "out"
    result = _launch(config, "--verbose", *train_args(RECIPE, untied_model, out, MICRO))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "to match the other processes" in result.stderr, "ranks never wanted different counts: change MICRO"
    worst = assert_trains_like_one_process(out, one_process_run, result.stdout, "FSDP")
    with capsys.disabled():
        print(f"\nFSDP2 (2 processes) vs one process: largest difference {worst:.3g}")


def test_zero3_trains_like_one_process_and_saves_whole_adapters(untied_model, one_process_run, tmp_path, capsys):
    """The shipped zero3.yaml (DeepSpeed ZeRO-3) on 2 CPU processes, sft → dpo: losses and both adapters equal one
    process (≤1e-4), all 28 adapter tensors saved with their full shapes. If this fails, ZeRO-3 saved the main
    rank's empty partition placeholders (shape [0]), or DeepSpeed was silently not used."""
    config = device_free_config("zero3.yaml", tmp_path)
    out = tmp_path / "out"
    result = _launch(config, *train_args(RECIPE, untied_model, out))
    assert result.returncode == 0, result.stderr[-3000:]
    worst = assert_trains_like_one_process(out, one_process_run, result.stdout, "DEEPSPEED")
    with capsys.disabled():
        print(f"\nZeRO-3 (2 processes) vs one process: largest difference {worst:.3g}")


def test_zero3_refuses_micro_batches_in_one_line(untied_model, tmp_path):
    """micro_batch_tokens under real DeepSpeed: each rank stops with the one-line error and no traceback of align's
    (the launcher then reports its own failure, exit 1). If this fails, a ZeRO-3 run would take one optimizer step
    per pass (DeepSpeed steps at every backward), or the user gets a traceback instead of the fix."""
    config = device_free_config("zero3.yaml", tmp_path)
    result = _launch(config, *train_args("dpo.yaml", untied_model, tmp_path / "out", MICRO))
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert "error: align: micro_batch_tokens cannot split batches under DeepSpeed" in "\n".join(lines)
    assert not [line for line in lines if "/align/" in line and 'File "' in line], "a traceback through align"


def test_two_machines_on_loopback_train_like_one_process_with_one_writer(
    untied_model, one_process_run, tmp_path, capsys
):
    """Two `accelerate launch` runs of the shipped multi_node.yaml, machine_rank 0 and 1, one process each,
    rendezvous at 127.0.0.1: losses and adapters equal one process (≤1e-4), and only the global rank 0 writes.
    Machine 1 is given its own output folder, as a machine without shared storage has: it must stay empty. If this
    fails, each machine's local main process writes outputs (two writers on a shared filesystem), or the machines
    train apart."""
    port, out, elsewhere = free_port(), tmp_path / "out", tmp_path / "machine1-out"
    cmds = [
        [
            ACCELERATE,
            "launch",
            "--config_file",
            str(REPO / "recipes" / "accelerate" / "multi_node.yaml"),
            "--machine_rank",
            str(rank),
            "--main_process_port",
            str(port),
            "-m",
            "align",
            *train_args(RECIPE, untied_model, folder),
        ]
        for rank, folder in ((0, out), (1, elsewhere))
    ]
    machine0, machine1 = run_together(cmds, timeout=300)
    assert machine0.returncode == 0 and machine1.returncode == 0, (machine0.stderr + machine1.stderr)[-3000:]
    worst = assert_trains_like_one_process(out, one_process_run, machine0.stdout + machine1.stdout, "MULTI_CPU")
    assert not elsewhere.exists() or not any(elsewhere.rglob("*")), "machine 1 wrote outputs"
    with capsys.disabled():
        print(f"\ntwo machines (1 process each) vs one process: largest difference {worst:.3g}")

"""Two real processes on the CPU over gloo, launched the way users launch: `accelerate launch -m align train`."""

import json
from pathlib import Path

import pytest

from tests.integration.launch import free_port, launch, train_args, two_cpu_processes

pytestmark = pytest.mark.slow


def _launch_two_processes(recipe: str, model_dir, out: Path, port: int, *overrides: str):
    """`accelerate launch --multi_gpu --num_processes 2 -m align train recipes/tiny/RECIPE` on the CPU (gloo)."""
    return launch(two_cpu_processes(port or free_port()), train_args(recipe, model_dir, out, *overrides))


def test_two_process_run_shards_data_and_writes_once(tiny_model_dir, tmp_path):
    """`--multi_gpu --num_processes 2` on a CPU: world size 2 in summary.json, each rank takes half the batches
    (48 rows / (4 per device × 2) = 6 steps, where one process alone takes 12), and one writer: every global step
    appears once in metrics.jsonl. If this fails, multi-process runs silently train N independent copies."""
    out = tmp_path / "out"
    result = _launch_two_processes("dpo.yaml", tiny_model_dir, out, port=29533)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["stages"][0]["steps"] == 6
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    assert steps == list(range(1, 7))
    assert summary["stages"][0]["eval"]["rewards/accuracies"] > 0.5
    assert result.stdout.count("outputs in") == 1, "only rank 0 reports"


def test_two_process_curriculum_ranks_see_different_rows(tiny_model_dir, tmp_path):
    """A two-stage recipe (SFT → DPO) on 2 CPU processes: world size 2; in the DPO stage each rank trained on 12 of
    the 24 rows and no row reached both ranks (fingerprints gathered from both processes); one writer (each global
    step once, one "outputs in" line, no second summary); both adapters are the LoRA the recipe asks for (r=8, all
    linear layers) and load with peft. If this fails, processes train on the same data or race on the outputs."""
    from peft import PeftConfig

    out = tmp_path / "out"
    result = _launch_two_processes("sft_then_dpo.yaml", tiny_model_dir, out, port=29534)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    warmup, concise = summary["stages"]
    assert summary["world_size"] == 2 and (warmup["steps"], concise["steps"]) == (3, 3)
    assert concise["data_parallel"] == {"world_size": 2, "rows_per_rank": [12, 12], "rows_on_several_ranks": 0}
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 7))
    assert result.stdout.count("outputs in") == 1
    for stage in ("warmup", "concise"):
        config = PeftConfig.from_pretrained(str(out / stage / "adapter"))
        assert config.r == 8 and config.lora_alpha == 16
    leftovers = [p.name for p in out.rglob(".*") if p.name not in (".", "..")]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def test_two_process_micro_batches_train_like_whole_batches(tiny_model_dir, tmp_path):
    """DDP over 2 CPU processes with each rank's packed batch split into 64-token passes (gradients synchronised by
    the last pass only): every step's loss and reward accuracy equal the unsplit two-process run's within 1e-4.
    If this fails, micro-batching under DDP drops or double-counts gradients of some passes."""
    losses = {}
    for name, extra in (("whole", ()), ("split", ("stages.concise.micro_batch_tokens=64",))):
        out = tmp_path / name
        result = _launch_two_processes("dpo.yaml", tiny_model_dir, out, 29535 + len(extra), *extra)
        assert result.returncode == 0, result.stderr[-3000:]
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        losses[name] = [(r["loss"], r["rewards/accuracies"]) for r in rows if "loss" in r]
    assert len(losses["whole"]) == 6
    for (a, acc_a), (b, acc_b) in zip(losses["whole"], losses["split"], strict=True):
        assert b == pytest.approx(a, abs=1e-4) and acc_b == pytest.approx(acc_a, abs=1e-6)


def test_two_process_packed_sft_trains_like_stock_sft_trainer(tiny_model_dir, tmp_path):
    """The SFT warm-up of sft_then_dpo.yaml on 2 CPU processes (DDP): packed and split into 128-token passes, its
    per-step losses equal stock trl SFTTrainer's (`batch_layout: padded`) within 1e-4, and the summaries record the
    two layouts. If this fails, the packed SFT loss is normalised differently across processes (trl's token count is
    gathered from every rank) or micro-batching under DDP loses gradients."""
    losses, layouts = {}, {}
    for name, extra in (
        ("stock", ("stages.warmup.batch_layout=padded",)),
        ("packed", ("stages.warmup.micro_batch_tokens=128",)),
    ):
        out = tmp_path / name
        result = _launch_two_processes("sft_then_dpo.yaml", tiny_model_dir, out, 29540 + len(losses), *extra)
        assert result.returncode == 0, result.stderr[-3000:]
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        losses[name] = [r["loss"] for r in rows if "loss" in r and r["stage"] == "warmup"]
        layouts[name] = json.loads((out / "summary.json").read_text())["stages"][0]["layout"]["batch_layout"]
    assert layouts == {"stock": "padded", "packed": "packed"}
    assert len(losses["stock"]) == 3
    assert losses["packed"] == pytest.approx(losses["stock"], abs=1e-4)

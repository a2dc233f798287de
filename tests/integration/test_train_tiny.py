"""`align train` end to end on the tiny model: real training, real files, reloadable adapter."""

import json
from pathlib import Path

import pytest
import torch

from align.recipe import load_recipe
from tests.conftest import align_train_cli

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    result = align_train_cli(REPO / "recipes" / "tiny" / "dpo.yaml", out, f"model.name={tiny_model_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_adapter_reloads_and_changed_the_model(tiny_run, tiny_model_dir):
    """The adapter is a PEFT folder that loads onto the base model and changes its outputs (it was trained)."""
    from peft import PeftModel

    from align.models import load_model

    out, _ = tiny_run
    base = load_model(str(tiny_model_dir), dtype="float32")
    ids = torch.randint(5, 200, (1, 10))
    before = base(input_ids=ids).logits
    tuned = PeftModel.from_pretrained(base, out / "concise" / "adapter")
    assert not torch.allclose(tuned(input_ids=ids).logits, before)


def test_loss_fell_and_held_out_accuracy_rose(tiny_run):
    """If this fails, the trainer is not optimising the preference loss (or evaluates on the wrong pairs)."""
    out, result = tiny_run
    summary = json.loads((out / "summary.json").read_text())
    (stage,) = summary["stages"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss" in r]
    assert train_rows[0]["loss"] == pytest.approx(0.6931, abs=1e-3), "a fresh LoRA adapter equals the reference"
    assert stage["final_train_loss"] < train_rows[0]["loss"] - 0.1
    assert stage["eval"]["rewards/accuracies"] > 0.5
    assert stage["eval"]["rewards/margins"] > 0
    assert "held-out reward accuracy" in result.stdout


def test_progress_in_a_log_is_a_stage_header_and_plain_lines(tiny_run):
    """stderr that is not a terminal (a log file, here a pipe) gets the stage header with the run's time left, then
    the stage-labelled training and held-out evaluation progress as plain lines, with no carriage return. If this
    fails, a batch job's log says nothing of which stage runs or fills with tqdm's `\\r` redraws."""
    _, result = tiny_run
    log = result.stderr
    # Read as text, the pipe's carriage returns became line breaks: a tqdm bar shows as its `NN%|` drawing.
    assert "%|" not in log, log[:2000]
    assert "stage 1/1 concise: 48 rows, 12 steps; run time left: unknown\n" in log
    lines = log.splitlines()
    header = lines.index("stage 1/1 concise: 48 rows, 12 steps; run time left: unknown")
    training = [line for line in lines if line.startswith("concise train: ")]
    assert training[-1].startswith("concise train: 12/12 (100%)")
    assert lines.index(training[0]) > header
    assert any(line.startswith("concise eval: 2/2 (100%)") for line in lines), "16 held-out rows in batches of 8"


def test_metrics_jsonl_has_one_row_per_logged_step(tiny_run):
    """logging_steps=1: one row per optimizer step, steps 1..N, each with stage and trl's keys; then eval."""
    out, _ = tiny_run
    summary = json.loads((out / "summary.json").read_text())
    steps = summary["stages"][0]["steps"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss" in r]
    assert steps == 12  # 48 rows / batch 4
    assert [r["step"] for r in train_rows] == list(range(1, steps + 1))
    for row in train_rows:
        assert row["stage"] == "concise"
        for key in (
            "rewards/chosen",
            "rewards/rejected",
            "rewards/accuracies",
            "rewards/margins",
            "logps/chosen",
            "logps/rejected",
            "lengths/chosen",
            "lengths/chosen_shorter_frac",
            "rewards/length_corr",
        ):
            assert key in row, key
    assert any("eval_rewards/accuracies" in r for r in rows)


def test_summary_and_resolved_recipe(tiny_run, tiny_model_dir):
    """summary.json carries the run facts; recipe.resolved.yaml reloads to the recipe that ran (overrides in)."""
    out, _ = tiny_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["world_size"] == 1
    stage = summary["stages"][0]
    assert stage["name"] == "concise" and stage["kind"] == "preference" and stage["steps"] == 12
    assert stage["train_rows"] == 48 and stage["eval_rows"] == 16
    assert stage["rows"]["filtered_by_kind"] > 0
    resolved = load_recipe(out / "recipe.resolved.yaml")
    assert resolved.recipe.model.name == str(tiny_model_dir)
    assert resolved.recipe.stages[0].data.max_rows == 48


def test_eval_pair_accuracy_of_the_trained_adapter(tiny_run, tiny_model_dir, tmp_path):
    """`align eval --pairs`: the trained adapter prefers chosen on held-out pairs (implicit reward vs base model), by
    kind too; a row with K negatives counts K comparisons. If this fails, evaluation misreads adapters or pairs."""
    from align.cli import main

    out, _ = tiny_run
    data = REPO / "data" / "concise"
    result_path = tmp_path / "eval.json"
    code = main(
        [
            "eval",
            "--model",
            str(tiny_model_dir),
            "--adapter",
            str(out / "concise" / "adapter"),
            "--prompts",
            str(data / "heldout_prompts.jsonl"),
            "--limit",
            "2",
            "--max-new-tokens",
            "4",
            "--pairs",
            str(data / "heldout_pairs.jsonl"),
            "--output",
            str(result_path),
        ]
    )
    assert code == 0
    result = json.loads(result_path.read_text())
    assert result["pair_accuracy"] > 0.5
    assert set(result["pair_accuracy_by_kind"]) == {"verbose", "vague", "incomplete"}
    assert result["pair_accuracy_by_kind"]["verbose"] > 0.8, "trained on verbose pairs, it must win those"


def test_summary_records_environment_data_digests_and_trainer_config(tiny_run):
    """A real run's summary.json names the versions, device and dtype it ran with and the sha256 of each data file it
    read, and the stage folder keeps the effective trainer config. If this fails, a run cannot be reproduced from its
    folder: the settings die with checkpoint rotation and nobody can tell which data or library versions it used."""
    import hashlib
    import importlib.metadata

    out, _ = tiny_run
    summary = json.loads((out / "summary.json").read_text())
    env = summary["environment"]
    assert env["libraries"]["trl"] == importlib.metadata.version("trl")
    assert (env["device"], env["dtype"], env["world_size"]) == ("cpu", "float32", 1)
    files = {Path(f["resolved"]).name: f for f in summary["data_files"]}
    assert set(files) == {"train.jsonl", "heldout_pairs.jsonl"}
    for name, record in files.items():
        data = (REPO / "data" / "concise" / name).read_bytes()
        assert record["sha256"] == hashlib.sha256(data).hexdigest() and record["bytes"] == len(data)
    config = json.loads((out / "concise" / "trainer_config.json").read_text())
    assert config["learning_rate"] == 1.0e-3 and config["per_device_eval_batch_size"] == 8
    assert config["report_to"] == []  # transformers' integrations off: the run's tracker gets the rows
    assert config["logging_nan_inf_filter"] is False  # align's default over trl's

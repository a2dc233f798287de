"""From a real tiny run to models people use: each stage's adapter folder is portable (Hub id of its base, tokenizer,
a card with the run's figures, also for a stage that missed a gate); peft loads it on a machine that has only an
offline Hugging Face cache; `align export` merges a named stage into a model plain transformers loads."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from align.errors import GateMissed
from align.export.build import ExportRequest, run_export
from align.models import registry
from tests.export.conftest import greedy_answers

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data" / "concise"
HUB_ID = "align-test/tiny-hub"
pytestmark = pytest.mark.slow
RECIPE = f"""name: tiny-export
model: {{name: tiny-hub}}
peft: {{r: 4, lora_alpha: 8, target_modules: all-linear}}
seed: 0
training: {{learning_rate: 1.0e-2, num_train_epochs: 1, per_device_train_batch_size: 4, per_device_eval_batch_size: 4,
  max_length: 128, logging_steps: 1, save_strategy: "no"}}
stages:
  - name: warmup
    kind: sft
    data: {{train: [{{path: {DATA}/sft.jsonl}}], max_rows: 8}}
    eval: {{prompts: {DATA}/heldout_prompts.jsonl, max_prompts: 2, max_new_tokens: 8,
      gates: {{max_mean_tokens_ratio: 100.0}}}}
  - name: pairs
    data: {{train: [{{path: {DATA}/train.jsonl}}], eval: [{{path: {DATA}/heldout_pairs.jsonl}}], max_rows: 8,
      max_eval_rows: 4}}
    loss: {{name: dpo, beta: 0.1}}
    eval: {{prompts: {DATA}/heldout_prompts.jsonl, max_prompts: 2, max_new_tokens: 8,
      gates: {{max_mean_tokens_ratio: 0.01}}}}
  - name: never
    data: {{train: [{{path: {DATA}/train.jsonl}}], max_rows: 4}}
"""


@pytest.fixture(scope="module")
def run(tiny_model_dir, tmp_path_factory):
    """The recipe trained in this process on `tiny-hub`, a short name registered for the test as a local copy of
    the Hub model `align-test/tiny-hub` (the tiny model); its second stage misses an impossible gate."""
    from align.curriculum import run_recipe
    from align.recipe import load_recipe

    def prepare(target: Path) -> None:
        shutil.copytree(tiny_model_dir, target, dirs_exist_ok=True)

    folder = tmp_path_factory.mktemp("export-run")
    (folder / "recipe.yaml").write_text(RECIPE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(registry._PREPARERS, "tiny-hub", (prepare, "the tiny test model, as if it were on the Hub"))
        patch.setitem(registry._HUB_IDS, "tiny-hub", HUB_ID)
        with pytest.raises(GateMissed):
            run_recipe(load_recipe(folder / "recipe.yaml"), folder / "out")
        yield folder / "out"


def test_every_stage_adapter_is_portable_with_the_runs_figures(run):
    """Both finished stages (the one that passed and the one that missed its gate) hold the tokenizer and chat
    template, name the base by its Hub id, and carry a card with summary.json's figures. If this fails, adapters
    only work on the training machine or their README is peft's empty template."""
    summary = json.loads((run / "summary.json").read_text())
    assert [stage["name"] for stage in summary["stages"]] == ["warmup", "pairs"]
    for position, stage in enumerate(summary["stages"], start=1):
        folder = run / stage["name"] / "adapter"
        assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == HUB_ID
        assert (folder / "tokenizer.json").exists() and "im_start" in (folder / "chat_template.jinja").read_text()
        card = (folder / "README.md").read_text()
        assert f"base_model: {HUB_ID}" in card and "More Information Needed" not in card
        assert f"stage {position} of 3" in card and f"| trained on | {stage['train_rows']} |" in card
        assert f"final {stage['final_train_loss']:.4g}" in card
        base_tokens = stage["probe"]["probe/base_mean_response_tokens"]
        assert (
            f"| mean_response_tokens | {stage['probe']['probe/mean_response_tokens']:.4g} | {base_tokens:.4g} |" in card
        )
    pairs_card = (run / "pairs" / "adapter" / "README.md").read_text()
    assert "| max_mean_tokens_ratio | 0.01 |" in pairs_card and "MISSED" in pairs_card
    assert f"| rewards/accuracies | {summary['stages'][1]['eval']['rewards/accuracies']:.4g} |" in pairs_card


def _offline_hub_cache(home: Path, repo_id: str, model_dir: Path) -> None:
    """Lay `model_dir` out as the Hub cache under HF_HOME=`home` would hold `repo_id` after a download."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = home / "hub" / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(model_dir, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)


def test_auto_peft_loads_the_adapter_from_an_offline_hub_cache(run, tiny_model_dir, tmp_path):
    """On a machine without align whose Hugging Face cache holds the base model under its Hub id, offline,
    `AutoPeftModelForCausalLM.from_pretrained(adapter)` loads base + adapter and answers as base + adapter do here.
    If this fails, the adapter names a base model another machine cannot find."""
    _offline_hub_cache(tmp_path / "hf", HUB_ID, tiny_model_dir)
    adapter = run / "pairs" / "adapter"
    elsewhere = greedy_answers("auto-peft", adapter, env={"HF_HOME": str(tmp_path / "hf")})
    assert "align" not in elsewhere["imported"]
    assert elsewhere["answers"] == greedy_answers("base+adapter", adapter, base=tiny_model_dir)["answers"]


def test_export_refuses_the_rejected_stage_unless_named_then_merges_it(run, tiny_model_dir, tmp_path):
    """`align export RUN` on a run stopped by a gate: exit 2, one line; with --stage the merged model loads in plain
    transformers and answers as base + adapter, its card reporting the miss. If this fails, a rejected adapter is
    published silently, or the merged model is not the trained one."""
    cmd = [sys.executable, "-m", "align", "export", str(run), "--output-dir", str(tmp_path / "m")]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "missed its gates; name the stage to export with --stage (warmup, pairs)" in done.stderr
    out = tmp_path / "merged"
    result = run_export(ExportRequest(source=str(run), stage="pairs", output_dir=str(out)))
    assert (result.artifact, result.stage) == ("merged", "pairs")
    merged = greedy_answers("merged", out)
    assert merged["imported"] == []
    assert (
        merged["answers"] == greedy_answers("base+adapter", run / "pairs" / "adapter", base=tiny_model_dir)["answers"]
    )
    card = (out / "README.md").read_text()
    assert "library_name: transformers" in card and "MISSED" in card and f'from_pretrained("{out}")' in card

"""Which adapter `align export SOURCE [--stage NAME]` exports: the last stage of a finished run, a named finished
stage, an adapter folder of a run or on its own; anything else refused in one line."""

import json

import pytest
import yaml

from align.errors import AlignError
from align.export.source import find_source


def _run(root, status, stages=("warmup", "easy"), model="some-org/base"):
    root.mkdir(parents=True)
    entries = [{"name": name, "kind": "preference", "train_rows": 4} for name in stages]
    summary = {"recipe": "r", "model": model, "status": status, "stages": entries}
    (root / "summary.json").write_text(json.dumps(summary))
    raw = {"name": "r", "model": {"name": model}, "stages": [{"name": n} for n in ("warmup", "easy", "hard")]}
    (root / "recipe.resolved.yaml").write_text(yaml.safe_dump(raw))
    for name in stages:
        (root / name / "adapter").mkdir(parents=True)
        (root / name / "adapter" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/x"}))
    return root


def test_a_finished_run_exports_its_last_stage_and_any_named_one(tmp_path):
    """The last stage by default, --stage for another; base model and card facts come from the run record. If this
    fails, export picks the wrong adapter or loses the run's figures."""
    root = _run(tmp_path / "run", "finished")
    last = find_source(str(root))
    assert last.adapter_dir == root / "easy" / "adapter" and last.facts.stage == "easy" and last.facts.position == 2
    assert last.base_model == last.base_name == "some-org/base"
    assert find_source(str(root), stage="warmup").adapter_dir == root / "warmup" / "adapter"
    nested = find_source(str(root / "warmup" / "adapter"))
    assert nested.facts.stage == "warmup" and nested.base_model == "some-org/base"


@pytest.mark.parametrize(
    ("status", "stage", "expected"),
    [
        ("gate_missed", None, "missed its gates; name the stage to export with --stage (warmup, easy)"),
        ("running", None, "has not finished (status 'running'); name one of its finished stages with --stage"),
        ("finished", "hard", "--stage: 'hard' is not a finished stage"),
    ],
)
def test_unfinished_or_rejected_stages_need_naming(tmp_path, status, stage, expected):
    """A run that stopped at a gate or did not finish exports nothing by default, and a stage that never finished
    is never exported. If this fails, `align export` publishes an adapter the run rejected without being asked."""
    root = _run(tmp_path / "run", status)
    with pytest.raises(AlignError) as info:
        find_source(str(root), stage=stage)
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert find_source(str(root), stage="easy").facts.stage == "easy"


def test_a_lone_adapter_folder_uses_the_base_it_names_or_model(tmp_path):
    """Outside a run, the adapter's own `base_model_name_or_path` is the base unless --model names another; no
    card facts. Any other folder is refused. If this fails, export of a downloaded adapter is impossible."""
    root = _run(tmp_path / "run", "finished")
    lone = tmp_path / "lone"
    (root / "easy" / "adapter").rename(lone)
    source = find_source(str(lone))
    assert (source.base_model, source.facts) == ("/x", None)
    assert find_source(str(lone), model="org/other").base_name == "org/other"
    for bad, message in ((tmp_path / "nope", "no such folder"), (tmp_path, "neither a run folder")):
        with pytest.raises(AlignError, match=message):
            find_source(str(bad))
    with pytest.raises(AlignError, match="--stage: names a stage of a run folder"):
        find_source(str(lone), stage="easy")


def test_an_adapter_naming_smollm2_by_hub_id_loads_the_embedded_copy(tmp_path):
    """An adapter folder naming `HuggingFaceTB/SmolLM2-135M-Instruct` (what align writes for the embedded model)
    exports from the embedded short name, offline, and keeps naming the Hub id. If this fails, exporting a SmolLM2
    adapter outside its run needs the Hub."""
    root = _run(tmp_path / "run", "finished")
    lone = tmp_path / "lone"
    (root / "easy" / "adapter").rename(lone)
    config = json.loads((lone / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "HuggingFaceTB/SmolLM2-135M-Instruct"
    (lone / "adapter_config.json").write_text(json.dumps(config))
    source = find_source(str(lone))
    assert (source.base_model, source.base_name) == ("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct")

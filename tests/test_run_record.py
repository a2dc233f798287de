"""summary.json's reproducibility record: the `environment` block and the sha256 of every data file a recipe reads."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
from pathlib import Path

import pytest
import torch

import align
from align.recipe import load_recipe
from align.run_record import (
    data_files,
    environment,
    folder_sha256,
    run_record,
    source_commit,
    training_device,
)

PACKAGE_DIR = Path(align.__file__).resolve().parent


def test_environment_names_the_installed_versions_device_and_dtype():
    """Every library's version is the one importlib.metadata reports (deepspeed only when installed), and device and
    dtype are the model's. If this fails, summary.json records versions or a placement other than the ones that ran."""
    model = torch.nn.Linear(3, 2).to(torch.bfloat16)
    env = environment(model, world_size=3, device=training_device("cpu", use_cpu=False))
    assert env["align"] == importlib.metadata.version("align")
    assert env["python"] == platform.python_version()
    for name in ("torch", "transformers", "trl", "peft", "accelerate", "datasets"):
        assert env["libraries"][name] == importlib.metadata.version(name), name
    try:
        assert env["libraries"]["deepspeed"] == importlib.metadata.version("deepspeed")
    except importlib.metadata.PackageNotFoundError:
        assert "deepspeed" not in env["libraries"]
    assert (env["device"], env["dtype"], env["world_size"]) == ("cpu", "bfloat16", 3)


def test_training_device_is_accelerates_unless_every_stage_trains_on_the_cpu():
    """The device is where the trainer puts the model (accelerate's device), not where the weights were loaded
    (always the CPU before training); `use_cpu` in every stage means the CPU. If this fails, a GPU run records
    "cpu", or a `use_cpu` run on a GPU machine records the GPU."""
    assert training_device("cpu", use_cpu=False) == "cpu"
    if torch.cuda.is_available():
        assert training_device("cuda:0", use_cpu=False).startswith("cuda:0 (")
    assert training_device("cuda:0", use_cpu=True) == "cpu"


def test_git_commit_is_the_checkout_align_runs_from():
    """Run from a git checkout (as the tests are), the commit is that checkout's HEAD. If this fails, a run made from
    a checkout cannot be traced back to its code."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PACKAGE_DIR, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("align is not imported from a git checkout here")
    record = source_commit()
    assert record["commit"] == head.stdout.strip() and isinstance(record["dirty"], bool)


def test_no_commit_outside_a_checkout_or_without_git(tmp_path, monkeypatch):
    """A package folder that is no repository's top level (an installed wheel, or one vendored inside another
    repository) records no commit, and neither does a machine without git: null, not an error and not another
    repository's commit."""
    inside_other = tmp_path / "project" / "venv" / "align"
    inside_other.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(tmp_path / "project")], check=True)
    assert source_commit(inside_other) is None
    assert source_commit(tmp_path) is None
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    assert source_commit(PACKAGE_DIR) is None


def test_data_files_hash_every_input_once(tmp_path, write):
    """A file used as training data by two stages and a probe prompts file are each listed once with hashlib's
    sha256 of their bytes and who reads them; a save_to_disk folder gets the digest of its manifest. If this fails,
    summary.json cannot prove which data a run trained on, or lists a file twice."""
    from datasets import Dataset

    pairs = write("data/pairs.jsonl", '{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    prompts = write("data/probes.jsonl", '{"prompt": "why?"}\n')
    saved = tmp_path / "data" / "saved"
    Dataset.from_list([{"prompt": "q", "chosen": "c", "rejected": "d"}]).save_to_disk(str(saved))
    recipe = write(
        "recipes/r.yaml",
        "name: r\nstages:\n"
        "  - name: one\n    data: {train: [{path: ../data/pairs.jsonl}], eval: [{path: ../data/saved}]}\n"
        "    eval: {prompts: ../data/probes.jsonl}\n"
        "  - name: two\n    data: {train: [{path: ../data/pairs.jsonl}]}\n",
    )
    files = {Path(f.resolved).name: f for f in data_files(load_recipe(recipe))}
    assert list(files) == ["pairs.jsonl", "saved", "probes.jsonl"]
    assert files["pairs.jsonl"].sha256 == hashlib.sha256(pairs.read_bytes()).hexdigest()
    assert files["pairs.jsonl"].used_by == ["one: train", "two: train"]
    assert files["pairs.jsonl"].path == "../data/pairs.jsonl" and files["pairs.jsonl"].kind == "file"
    assert files["probes.jsonl"].sha256 == hashlib.sha256(prompts.read_bytes()).hexdigest()
    assert files["probes.jsonl"].used_by == ["one: eval.prompts"]
    manifest = "".join(
        f"{p.relative_to(saved).as_posix()}\0{hashlib.sha256(p.read_bytes()).hexdigest()}\n"
        for p in sorted(saved.rglob("*"))
        if p.is_file()
    )
    assert files["saved"].kind == "save_to_disk"
    assert files["saved"].sha256 == hashlib.sha256(manifest.encode()).hexdigest()
    before = files["saved"].sha256
    (saved / "extra.txt").write_text("x")
    assert folder_sha256(saved)[0] != before


def test_on_policy_prompts_are_hashed(write):
    """The prompts an on-policy stage samples (`data.generate.prompts`) are data the run read: listed with their
    sha256 under that key. If this fails, summary.json cannot prove what an on-policy stage was prompted with."""
    prompts = write("data/prompts.jsonl", '{"prompt": "why?"}\n')
    recipe = write(
        "recipes/r.yaml",
        "name: r\nstages:\n  - name: self\n    data: {generate: {prompts: ../data/prompts.jsonl}}\n",
    )
    (found,) = data_files(load_recipe(recipe))
    assert found.used_by == ["self: data.generate.prompts"]
    assert found.sha256 == hashlib.sha256(prompts.read_bytes()).hexdigest()


def test_hub_ids_are_listed_without_a_digest_and_with_a_reason(write):
    """A Hub dataset id has no local bytes: it is listed with sha256 null and a reason, never guessed at."""
    recipe = write("r.yaml", "name: r\nstages:\n  - name: one\n    data: {train: [{path: someone/prefs}]}\n")
    (hub,) = data_files(load_recipe(recipe))
    assert (hub.kind, hub.resolved, hub.sha256, hub.path) == ("hub", None, None, "someone/prefs")
    assert "Hub" in hub.reason


def test_run_record_is_json_ready(recipe_dir):
    """What goes into summary.json: `environment` and `data_files` as plain mappings."""
    import json

    recipe = recipe_dir("r.yaml", "name: r\nstages:\n  - name: one\n    data: {train: [{path: pairs.jsonl}]}\n")
    record = run_record(load_recipe(recipe), torch.nn.Linear(2, 2))
    assert json.loads(json.dumps(record)) == record
    assert record["environment"]["world_size"] == 1 and record["data_files"][0]["used_by"] == ["one: train"]

"""The resume bookkeeping: which checkpoint is complete, which metrics rows survive, which folders are refused."""

import json

import pytest

from align.errors import AlignError
from align.outputs import RunOutputs
from align.resume import ResumePoint, latest_checkpoint, plan_resume, trim_metrics


def _checkpoint(folder, step, complete=True):
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text('{"global_step": %d}' % step if complete else '{"global_st')
    return path


def test_latest_checkpoint_skips_one_cut_off_while_saving(tmp_path):
    """checkpoint-6 was being written when the run was killed (truncated trainer_state.json), checkpoint-10 has no
    state at all: resume must use checkpoint-4, not crash loading a half-written one. Numeric order, not text order."""
    _checkpoint(tmp_path, 2)
    four = _checkpoint(tmp_path, 4)
    _checkpoint(tmp_path, 6, complete=False)
    (tmp_path / "checkpoint-10").mkdir()
    (tmp_path / "checkpoint-8.tmp").mkdir()
    assert latest_checkpoint(tmp_path) == four
    assert latest_checkpoint(tmp_path / "missing") is None


def test_trim_metrics_keeps_finished_stages_and_steps_up_to_the_checkpoint(tmp_path):
    """Rows logged after the checkpoint will be logged again by the resumed run: they go, nothing else does."""
    outputs = RunOutputs(tmp_path)
    rows = [
        {"stage": "a", "step": 1, "stage_step": 1},
        {"stage": "a", "step": 2, "stage_step": 2},
        {"stage": "b", "step": 3, "stage_step": 1},
        {"stage": "b", "step": 4, "stage_step": 2},
        {"stage": "b", "step": 5, "stage_step": 3},
    ]
    outputs.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    point = ResumePoint([{"name": "a", "steps": 2}], 2, "b", tmp_path / "b" / "checkpoints" / "checkpoint-2")
    assert trim_metrics(outputs, point) == 1
    kept = [json.loads(line)["step"] for line in outputs.metrics_path.read_text().splitlines()]
    assert kept == [1, 2, 3, 4]


def test_a_summary_naming_other_stages_is_refused(tmp_path):
    """A folder whose finished stages are not this recipe's first stages belongs to another run."""
    outputs = RunOutputs(tmp_path)
    outputs.write_resolved_recipe({"name": "r"})
    outputs.write_summary({"status": "running", "stages": [{"name": "other", "steps": 3}]})
    with pytest.raises(AlignError, match=r"records stages \['other'\], which are not the first stages"):
        plan_resume(outputs, {"name": "r"}, ["warmup", "concise"], resume=True)
    outputs.write_summary({"status": "gate_missed", "failed_stage": "warmup", "stages": []})
    with pytest.raises(AlignError, match=r"stopped at a missed gate in stage 'warmup'"):
        plan_resume(outputs, {"name": "r"}, ["warmup"], resume=True)


def test_a_full_disk_is_refused_before_training_and_one_line_during(tmp_path, monkeypatch, capsys):
    """Too little free space stops the run before any training (exit 2, one line naming the folder); a disk that
    fills while writing is one line naming the file, not a traceback. If this fails, an overnight run dies hours in
    with a stack trace, or leaves a half-written result."""
    import errno
    import shutil
    from collections import namedtuple

    from align.cli import main
    from align.outputs import RunOutputs

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    with pytest.raises(AlignError, match=r"only 1 MiB free; a run needs at least 64 MiB"):
        RunOutputs(tmp_path / "out").prepare()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "summary.json"))

    monkeypatch.setattr("align.cli._cmd_validate", full)
    assert main(["validate", "x.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "summary.json: cannot write: No space left on device" in err


@pytest.mark.parametrize("state", ["missing", "empty", "killed-before-summary"])
def test_resume_with_no_run_yet_starts_a_fresh_run(tmp_path, caplog, state):
    """A requeued job passes --resume before its first run got anywhere: the folder is missing, empty, or holds only
    what a run killed before its first summary.json wrote (the resolved recipe, a tracker folder). A fresh run
    starts (None) with one log line. If this fails, the requeued job exits 2 and never trains."""
    outputs = RunOutputs(tmp_path / "out")
    if state != "missing":
        outputs.root.mkdir()
    if state == "killed-before-summary":
        outputs.write_resolved_recipe({"name": "r"})
        (outputs.root / "tensorboard").mkdir()
    with caplog.at_level("WARNING"):
        assert plan_resume(outputs, {"name": "r"}, ["warmup"], resume=True) is None
    assert [r.getMessage() for r in caplog.records] == [
        f"{outputs.root}: no run to resume there yet (no summary.json); starting a fresh run"
    ]


def test_resume_before_a_summary_still_refuses_another_recipe_or_stray_metrics(tmp_path):
    """Without summary.json, a resolved recipe of another recipe, or metrics.jsonl, means the folder is not an
    unstarted run of this recipe: refused (exit 2), so nothing is mixed."""
    outputs = RunOutputs(tmp_path)
    outputs.write_resolved_recipe({"name": "r", "seed": 1})
    with pytest.raises(AlignError, match=r"the recipe differs from the run's at seed"):
        plan_resume(outputs, {"name": "r", "seed": 2}, ["warmup"], resume=True)
    outputs.append_metrics({"stage": "warmup", "step": 1})
    with pytest.raises(AlignError, match=r"summary.json: missing, though metrics.jsonl is there"):
        plan_resume(outputs, {"name": "r", "seed": 1}, ["warmup"], resume=True)


def test_resume_of_a_finished_run_is_done_unless_the_recipe_changed(tmp_path):
    """A finished run of the same recipe: `RunFinished` (the CLI exits 0, nothing trained). A finished run of another
    recipe is still refused: saying "done" would pretend the new recipe ran."""
    from align.resume import RunFinished

    outputs = RunOutputs(tmp_path)
    outputs.write_resolved_recipe({"name": "r", "seed": 1})
    outputs.write_summary({"status": "finished", "stages": [{"name": "warmup", "steps": 3}]})
    with pytest.raises(RunFinished, match=r"this run already finished; nothing to resume"):
        plan_resume(outputs, {"name": "r", "seed": 1}, ["warmup"], resume=True)
    with pytest.raises(AlignError, match=r"the recipe differs from the run's at seed"):
        plan_resume(outputs, {"name": "r", "seed": 2}, ["warmup"], resume=True)
    outputs.summary_path.write_text('{"status": "fini')
    with pytest.raises(AlignError, match=r"summary.json: unreadable"):
        plan_resume(outputs, {"name": "r", "seed": 1}, ["warmup"], resume=True)


def test_train_resume_of_a_finished_run_exits_0_without_training(write, tmp_path, capsys, monkeypatch):
    """`align train RECIPE --resume` on a finished run prints that it finished and exits 0 before any model is
    loaded or file written. If this fails, a requeued job fails (exit 2) or trains the run again."""
    from align import curriculum
    from align.cli import main
    from align.recipe import load_recipe

    data = write("pairs.jsonl", '{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    recipe = write(
        "r.yaml",
        f"name: r\nmodel: {{name: tiny-llama}}\nstages:\n  - name: s\n    data: {{train: [{{path: {data}}}]}}\n",
    )
    outputs = RunOutputs(tmp_path / "out")
    outputs.write_resolved_recipe(load_recipe(recipe).resolved_raw())
    outputs.write_summary({"status": "finished", "stages": [{"name": "s", "steps": 3}]})
    before = {p.name: p.stat().st_mtime_ns for p in outputs.root.iterdir()}
    monkeypatch.setattr(curriculum, "load_model", lambda *a, **k: pytest.fail("a finished run loaded a model"))
    assert main(["train", str(recipe), "--resume", "--output-dir", str(outputs.root)]) == 0
    assert (
        capsys.readouterr().out.strip().splitlines()[-1]
        == f"{outputs.root}: this run already finished; nothing to resume (--overwrite trains it again)"
    )
    assert {p.name: p.stat().st_mtime_ns for p in outputs.root.iterdir()} == before


def test_resume_of_a_run_killed_in_its_first_stage_restarts_that_stage(tmp_path):
    """Killed after its first summary.json (status running, no stage done) but before any checkpoint: --resume
    continues it from the first stage's beginning, and the metrics rows it logged are dropped to be logged again.
    If this fails, a requeued job killed early refuses, or double-logs its first steps."""
    outputs = RunOutputs(tmp_path)
    outputs.write_resolved_recipe({"name": "r"})
    outputs.write_summary({"status": "running", "stages": []})
    outputs.append_metrics({"stage": "warmup", "step": 1, "stage_step": 1})
    point = plan_resume(outputs, {"name": "r"}, ["warmup", "concise"], resume=True)
    assert (point.finished, point.next_stage, point.checkpoint, point.step_offset) == ([], "warmup", None, 0)
    assert trim_metrics(outputs, point) == 1 and outputs.metrics_path.read_text() == ""

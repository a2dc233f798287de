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
    rows = [{"stage": "a", "step": 1, "stage_step": 1}, {"stage": "a", "step": 2, "stage_step": 2},
            {"stage": "b", "step": 3, "stage_step": 1}, {"stage": "b", "step": 4, "stage_step": 2},
            {"stage": "b", "step": 5, "stage_step": 3}]  # fmt: skip
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

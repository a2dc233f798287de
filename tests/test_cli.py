"""The CLI's contract: self-explaining help, exit codes 0/2, one line per user error, never a traceback."""

import subprocess
import sys

import pytest

from align.cli import main


def _run(*args):
    return subprocess.run([sys.executable, "-m", "align", *args], capture_output=True, text=True)


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["validate", "--help"], ["eval", "--help"]])
def test_help_explains_itself(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "usage: align" in text and len(text.splitlines()) > 5


def test_python_dash_m_entry_point_works():
    """`accelerate launch -m align ...` depends on this."""
    result = _run("validate", "--explain", "model.dtype")
    assert result.returncode == 0 and "bfloat16" in result.stdout


def test_validate_exit_codes_and_one_line_errors(write):
    data = write("p.jsonl", '{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    good = write("good.yaml", f"name: t\nstages:\n  - name: s\n    data: {{train: [{{path: {data}}}]}}\n")
    bad = write("bad.yaml", "name: t\nseeed: 3\nstages:\n  - name: s\n    data: {train: [{path: nowhere.jsonl}]}\n")
    ok = _run("validate", str(good))
    assert ok.returncode == 0 and "OK" in ok.stdout
    failed = _run("validate", str(bad))
    assert failed.returncode == 2
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 2, failed.stderr
    assert lines[0] == f"error: {bad}:2: seeed: unknown key; did you mean 'seed'?"
    assert "nowhere.jsonl" in lines[1]
    assert "Traceback" not in failed.stderr


def test_train_on_a_missing_recipe_is_a_user_error(tmp_path):
    result = _run("train", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'missing.yaml'}: no such file"


def test_bad_flags_exit_2_with_one_line():
    result = _run("train")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_train_prints_where_each_stage_spent_its_time():
    """The per-stage line ends with the wall time of each phase the stage had (training, on-policy sampling,
    probes), from summary.json's figures; a stage without sampling or probes names only what it had. If this
    fails, `make demo` cannot say where its minutes went."""
    from align.cli import _phase_times

    stage = {"train_runtime_s": 91.4, "generated": {"seconds": 40.2}, "probe_seconds": 12.0}
    assert _phase_times(stage) == "; 91 s training, 40 s sampling, 12 s probes"
    assert _phase_times({"train_runtime_s": 8.6}) == "; 9 s training"
    assert _phase_times({}) == ""

"""`align export` on the command line: help that explains it, and one line with exit 2 for a bad source or flag."""

import subprocess
import sys

import pytest

from align.cli import main


def test_export_help_lists_its_flags(capsys):
    """If this fails, `align export --help` does not say how to export, merge or push."""
    with pytest.raises(SystemExit) as info:
        main(["export", "--help"])
    text = capsys.readouterr().out
    assert info.value.code == 0
    assert all(flag in text for flag in ("--stage", "--adapter-only", "--dtype", "--push-to-hub", "--private"))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["nowhere", "--output-dir", "o"],
            "error: nowhere: no such folder; give an `align train` output folder or a PEFT adapter folder",
        ),
        (["nowhere", "--output-dir", "o", "--private"], "error: --private: makes the Hub repo private"),
        (["nowhere", "--dtype", "int3"], "invalid choice: 'int3'"),
    ],
)
def test_bad_export_requests_are_one_line_exit_2(args, expected, tmp_path):
    """If this fails, a mistyped export ends in a traceback or exit 1."""
    done = subprocess.run(
        [sys.executable, "-m", "align", "export", *args], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert expected in done.stderr

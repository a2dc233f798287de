"""The output folder: refused before training when it cannot be written."""

from pathlib import Path

from align.cli import main

REPO = Path(__file__).resolve().parent.parent


def test_unwritable_output_folder_is_refused_before_training(tmp_path, capsys):
    """An output path that cannot be a folder (it lies under a regular file) stops `align train` at once with exit 2
    and one line naming it — before the model is loaded or any step is trained. If this fails, the run would fail
    only when it first saves, possibly hours in."""
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    code = main(["train", str(REPO / "recipes" / "tiny" / "dpo.yaml"), "--output-dir", str(blocker / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "file.txt/out: output folder is not writable" in err and "choose another with --output-dir" in err

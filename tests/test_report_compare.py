"""`align report RUN_A RUN_B`: two runs' curves overlaid and their stage figures side by side, from their files."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

import align.report_compare as compare
from align.cli import main
from align.errors import AlignError
from align.report_compare import write_comparison
from tests.test_report import PNG_SIGNATURE, _preference_rows, _sft_rows, _stage_summary, _write_run

OVERLAYS = [
    "loss.png",
    "eval_loss.png",
    "rewards_margins.png",
    "rewards_accuracies.png",
    "eval_rewards_margins.png",
    "eval_rewards_accuracies.png",
]
ENVIRONMENT = {
    "align": "0.1.0",
    "git": {"commit": "0123456789abcdef0123", "dirty": False},
    "python": "3.12.3",
    "libraries": {"torch": "2.13.0", "trl": "1.16.0"},
    "device": "cpu",
    "dtype": "float32",
    "world_size": 1,
}


def _summary(final_loss: float, accuracy: float, trl: str) -> dict:
    environment = copy.deepcopy(ENVIRONMENT)
    environment["libraries"]["trl"] = trl
    return {
        "recipe": "concise-demo",
        "model": "tiny-llama",
        "status": "finished",
        "total_steps": 10,
        "world_size": 1,
        "environment": environment,
        "data_files": [{"path": "train.jsonl", "sha256": "ab" * 32}],
        "stages": [
            _stage_summary("warmup", "sft", 1, 4),
            _stage_summary(
                "concise", "preference", 5, 6, final_train_loss=final_loss, eval={"rewards/accuracies": accuracy}
            ),
        ],
    }


def _run(root: Path, shift: float, final_loss: float, accuracy: float, trl: str) -> Path:
    rows = _sft_rows() + _preference_rows("concise", offset=4, steps=6)
    for row in rows:
        if isinstance(row.get("loss"), float):
            row["loss"] += shift
    return _write_run(root, rows, _summary(final_loss, accuracy, trl))


@pytest.fixture
def two_runs(tmp_path) -> tuple[Path, Path]:
    """The same recipe run twice (folders run-a and run-b): B's losses 0.25 lower, another trl version."""
    return (
        _run(tmp_path / "lr-high" / "run-a", 0.0, 0.5, 0.75, "1.16.0"),
        _run(tmp_path / "lr-low" / "run-b", -0.25, 0.4, 0.875, "1.17.0"),
    )


def test_overlay_plots_hold_both_runs_curves(two_runs, tmp_path, monkeypatch):
    """One PNG per loss/reward metric, each with both runs' curves labelled by run; A's training-loss points are
    A's rows and B's are B's. If this fails, the comparison draws one run only, mixes their points, or mislabels."""
    drawn = {}
    save = compare.save_png
    monkeypatch.setattr(compare, "save_png", lambda fig, path: (drawn.__setitem__(path.name, fig), save(fig, path)))
    out = tmp_path / "cmp"
    written = write_comparison(*two_runs, out)
    assert written == [out / name for name in OVERLAYS] + [out / "compare.md"]
    for name in OVERLAYS:
        assert (out / name).read_bytes().startswith(PNG_SIGNATURE), name
    (ax,) = drawn["loss.png"].axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["run-a", "run-b"]
    colors = {line.get_color() for line in ax.get_lines() if line.get_linestyle() == "-"}
    assert colors == {"C0", "C3"}
    first = [line for line in ax.get_lines() if line.get_linestyle() == "-" and line.get_color() == "C0"][0]
    second = [line for line in ax.get_lines() if line.get_linestyle() == "-" and line.get_color() == "C3"][0]
    assert list(first.get_xdata()) == [1, 2, 3, 4] and list(first.get_ydata()) == pytest.approx([2.4, 2.3, 2.2, 2.1])
    assert list(second.get_ydata()) == pytest.approx([2.15, 2.05, 1.95, 1.85])


def test_compare_md_tabulates_setup_and_stage_figures_side_by_side(two_runs, tmp_path):
    """compare.md names both runs, marks setup differences (the trl version) and gives each stage's figures for A,
    B and B − A. If this fails, a reader cannot tell which run did better or what differed between them."""
    write_comparison(*two_runs, tmp_path / "cmp")
    text = (tmp_path / "cmp" / "compare.md").read_text(encoding="utf-8")
    assert text.startswith("# Runs compared: run-a vs run-b")
    assert "| trl | 1.16.0 | 1.17.0 | ≠ |" in text and "| torch | 2.13.0 | 2.13.0 |  |" in text
    assert "| git commit | 0123456789ab | 0123456789ab |  |" in text
    assert "| concise | final train loss | 0.5 | 0.4 | -0.1 |" in text
    assert "| concise | held-out reward accuracy | 0.75 | 0.875 | 0.125 |" in text
    assert "| warmup | kind | sft | sft |  |" in text and "| concise | steps | 6 | 6 | 0 |" in text
    for name in OVERLAYS:
        assert f"]({name})" in text


def test_a_metric_only_one_run_logged_is_drawn_and_one_neither_logged_is_explained(tmp_path):
    """An sft-only run B against a preference run A: reward plots show A alone and say so; a metric neither logged
    is not drawn and compare.md says why; a stage only A has shows "—" for B. Recipes differ, so they label."""
    a = _run(tmp_path / "a", 0.0, 0.5, 0.75, "1.16.0")
    b_summary = {"recipe": "sft-only", "status": "finished", "stages": [_stage_summary("warmup", "sft", 1, 4)]}
    b = _write_run(tmp_path / "b", _sft_rows(), b_summary)
    for row_file in (a / "metrics.jsonl",):
        kept = [line for line in row_file.read_text().splitlines() if "eval_rewards/margins" not in line]
        row_file.write_text("\n".join(kept) + "\n")
    out = tmp_path / "cmp"
    (out).mkdir()
    (out / "eval_rewards_margins.png").write_bytes(PNG_SIGNATURE + b"stale")
    written = [p.name for p in write_comparison(a, b, out)]
    assert "rewards_margins.png" in written and "eval_rewards_margins.png" not in written
    assert not (out / "eval_rewards_margins.png").exists()
    text = (out / "compare.md").read_text(encoding="utf-8")
    assert "Runs compared: concise-demo vs sft-only" in text and "Only concise-demo logged it." in text
    assert "Not drawn (`eval_rewards_margins.png`): neither run logged `eval_rewards/margins`" in text
    assert "| concise | final train loss | 0.5 | — |  |" in text


def test_cli_compares_two_runs_and_refuses_bad_arguments(two_runs, tmp_path, capsys):
    """`align report A B` writes the comparison (default under A/report/) and lists it; three folders, the same run
    twice or --output-dir with one run are one-line errors (exit 2)."""
    a, b = two_runs
    assert main(["report", str(a), str(b)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[-1] == str(a / "report" / "compare-run-b" / "compare.md")
    assert main(["report", str(a), str(b), "--output-dir", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "loss.png").is_file()
    capsys.readouterr()
    for argv in ([str(a), str(b), str(a)], [str(a), str(a)], [str(a), "--output-dir", str(tmp_path / "y")]):
        assert main(["report", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err


def test_same_run_twice_is_refused(two_runs):
    with pytest.raises(AlignError, match="same run twice"):
        write_comparison(two_runs[0], two_runs[0])

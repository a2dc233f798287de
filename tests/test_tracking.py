"""Trackers (`report_to`): one wandb run per `align train` on a continuous x-axis, read back with wandb's own reader;
the offline fallback without an API key; tensorboard; the no-op tracker; the metrics callback forwarding rows."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from align.errors import AlignError
from align.outputs import RunOutputs
from align.tracker_backends import (
    TensorBoardTracker,
    WandbTracker,
    _wandb_credentials_configured,
    _wandb_table,
    generations_markdown,
)
from align.tracking import MetricsJsonlCallback, MultiTracker, Tracker, make_tracker, trl_figures

RECIPE = {"name": "concise", "model": {"name": "tiny"}, "stages": [{"name": "sft"}, {"name": "dpo"}]}
ROWS = [
    {"stage": "sft", "step": 1, "stage_step": 1, "loss": 2.0, "epoch": 0.5},
    {"stage": "sft", "step": 2, "stage_step": 2, "loss": 1.5, "eval_loss": 1.75, "note": "not a number"},
    {"stage": "dpo", "step": 3, "stage_step": 1, "loss": 0.5, "lengths/chosen": 12.5, "rewards/accuracies": 0.75},
]
RECORDS = {
    "sft": [
        {
            "prompt": "Why is the sky blue?",
            "base": "Well, so, the sky...",
            "tuned": "Rayleigh scattering.",
            "base_tokens": 30,
            "tuned_tokens": 4,
            "base_key_point_recall": 0.5,
            "tuned_key_point_recall": 1.0,
        }
    ],
    "dpo": [
        {
            "prompt": "Why is the sky blue?",
            "reference": "Scattering.",
            "base": "Well, so, the sky...",
            "tuned": "Scattering | short.",
            "base_tokens": 30,
            "tuned_tokens": 3,
            "base_key_point_recall": None,
            "tuned_key_point_recall": None,
        }
    ],
}
SUMMARY = {
    "recipe": "concise",
    "status": "finished",
    "total_steps": 3,
    "stages": [
        {
            "name": "sft",
            "steps": 2,
            "final_train_loss": 1.5,
            "eval": {"loss": 1.75},
            "probe": {"probe/mean_tokens_ratio": 0.13},
            "gates": [{"passed": True}],
        },
        {"name": "dpo", "steps": 1, "final_train_loss": 0.5, "eval": {}, "probe": {}},
    ],
}


@pytest.fixture
def wandb_home(tmp_path, monkeypatch):
    """wandb offline, with its caches, settings and netrc inside the test folder, and a fresh wandb singleton (it
    caches settings read from the environment) before and after the test."""
    import wandb

    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_PROJECT", "WANDB_NAME", "WANDB_RUN_GROUP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("NETRC", str(tmp_path / "no.netrc"))
    for name, folder in (
        ("WANDB_DATA_DIR", "data"),
        ("WANDB_CACHE_DIR", "cache"),
        ("WANDB_CONFIG_DIR", "config"),
        ("WANDB_ARTIFACT_DIR", "artifacts"),
    ):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / folder))
    wandb.teardown()
    yield tmp_path
    wandb.teardown()


def _run_dir(output_dir: Path) -> Path:
    (run_dir,) = (output_dir / "wandb").glob("offline-run-*")
    return run_dir


def _read_run(run_dir: Path) -> list[dict]:
    """The records of the run's `.wandb` transaction log, decoded by wandb's own reader (`wandb leet inspect`)."""
    done = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def _start_wandb(output_dir: Path) -> WandbTracker:
    RunOutputs(output_dir).prepare()
    RunOutputs(output_dir).write_resolved_recipe(RECIPE)
    tracker = make_tracker("wandb", main_process=True)
    assert isinstance(tracker, WandbTracker)
    tracker.start("concise:sft+dpo", "concise", {"recipe": RECIPE}, output_dir, stages=["sft", "dpo"])
    return tracker


def test_wandb_offline_run_has_both_stages_on_one_axis_config_artifact_and_tables(wandb_home, caplog):
    """One offline wandb run for a two-stage curriculum. If this fails, a reviewer would see stages on restarting
    x-axes or in separate runs, miss `all/<key>` or `<stage>/<key>` charts (length telemetry included), find no
    resolved recipe in the config or as an artifact, or get no per-stage / cross-stage generation tables."""
    output_dir = wandb_home / "out"
    with caplog.at_level(logging.WARNING, logger="align.tracker_backends"):
        tracker = _start_wandb(output_dir)
    assert not caplog.records  # WANDB_MODE is set: no offline hint
    for row in ROWS[:2]:
        tracker.log(row)
    tracker.log_generations("sft", 2, RECORDS["sft"])
    tracker.log(ROWS[2])
    tracker.log_generations("dpo", 3, RECORDS["dpo"])
    tracker.set_summary(SUMMARY)
    tracker.finish("finished")
    tracker.finish("finished")  # a second call (e.g. from a `finally`) is harmless

    run_dir = _run_dir(output_dir)
    assert list(run_dir.glob("run-*.wandb"))
    records = _read_run(run_dir)
    kinds = [r["type"] for r in records]

    (run,) = [r["run"] for r in records if r["type"] == "run"]
    assert run["display_name"] == "concise:sft+dpo" and run["run_group"] == "concise" and run["job_type"] == "train"
    assert run["project"] == "align"
    assert run["config"]["update"]["recipe"] == RECIPE
    assert run["config"]["update"]["stage_names"] == ["sft", "dpo"]

    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    metrics = [h for h in history if "all/loss" in h]
    assert [(h["global_step"], h["all/loss"], h["stage_index"]) for h in metrics] == [
        (1, 2.0, 0),
        (2, 1.5, 0),
        (3, 0.5, 1),
    ]
    assert [h["sft/loss"] for h in metrics if "sft/loss" in h] == [2.0, 1.5]
    assert metrics[1]["sft/eval/loss"] == 1.75 and metrics[1]["all/eval/loss"] == 1.75
    assert metrics[2]["dpo/lengths/chosen"] == 12.5 and metrics[2]["all/lengths/chosen"] == 12.5
    assert metrics[2]["dpo/rewards/accuracies"] == 0.75 and metrics[2]["stage_step"] == 1
    # trl's names beside align's, for panels made for trl runs: train/<key>, eval/<key>, train/global_step.
    assert [(h["train/global_step"], h["train/loss"]) for h in metrics] == [(1, 2.0), (2, 1.5), (3, 0.5)]
    assert metrics[1]["eval/loss"] == 1.75 and metrics[2]["train/rewards/accuracies"] == 0.75
    assert not any("note" in key for h in history for key in h)
    assert all(not key.startswith("dpo/") for h in metrics[:2] for key in h)

    axis = [r["metric"] for r in records if r["type"] == "metric"]
    assert any(m.get("glob_name") == "*" and m.get("step_metric") == "global_step" for m in axis)

    # The history holds each table as a reference (flattened `<key>._type`, `<key>.path`) to a JSON file under
    # files/media/table/.
    tables = {
        (h["global_step"], key.removesuffix("._type")): h[key.replace("._type", ".path")]
        for h in history
        for key in h
        if key.startswith("generations/") and key.endswith("._type") and h[key] == "table-file"
    }
    assert set(tables) == {
        (2, "generations/sft"),
        (2, "generations/all"),
        (3, "generations/dpo"),
        (3, "generations/all"),
    }
    assert all(path.startswith("media/table/generations/") for path in tables.values())
    table = json.loads((run_dir / "files" / tables[3, "generations/all"]).read_text())
    assert table["columns"] == [
        "stage",
        "step",
        "prompt",
        "reference",
        "base answer",
        "current answer",
        "base tokens",
        "current tokens",
        "base key-point recall",
        "current key-point recall",
    ]
    assert [row[:2] for row in table["data"]] == [["sft", 2], ["dpo", 3]]  # every stage side by side, latest table
    dpo = json.loads((run_dir / "files" / tables[3, "generations/dpo"]).read_text())
    assert dpo["data"] == [table["data"][1]] and dpo["data"][0][5] == "Scattering | short."
    sft = json.loads((run_dir / "files" / tables[2, "generations/sft"]).read_text())
    assert "reference" not in sft["columns"] and sft["data"][0][sft["columns"].index("current tokens")] == 4

    artifacts = [r["artifact"] for r in records if r["type"] == "artifact" and r["artifact"]["type"] == "recipe"]
    assert len(artifacts) == 1
    assert [c["path"] for c in artifacts[0]["manifest"]["contents"]] == ["recipe.resolved.yaml"]

    summary = {}
    for r in records:
        if r["type"] == "summary":
            summary.update(r["summary"].get("update", {}))
    assert summary["status"] == "finished" and summary["total_steps"] == 3
    assert summary["sft/final_train_loss"] == 1.5 and summary["sft/eval/loss"] == 1.75
    assert summary["sft/probe/mean_tokens_ratio"] == 0.13 and summary["sft/gates_passed"] is True
    assert kinds[-1] == "exit" and records[-1]["exit"].get("exit_code", 0) == 0


def test_wandb_failed_run_exits_nonzero(wandb_home):
    """`finish("failed")` must mark the wandb run failed (exit code 1) with its status in the summary; otherwise a
    crashed or gate-missed run looks finished in the wandb UI."""
    output_dir = wandb_home / "out"
    tracker = _start_wandb(output_dir)
    tracker.log(ROWS[0])
    tracker.finish("gate_missed")
    tracker.finish("gate_missed")
    records = _read_run(_run_dir(output_dir))
    assert records[-1]["type"] == "exit" and records[-1]["exit"]["exit_code"] == 1
    assert any(
        r["type"] == "summary" and r["summary"].get("update", {}).get("status") == "gate_missed" for r in records
    )


def test_no_api_key_and_no_mode_logs_offline_with_one_hint(wandb_home, monkeypatch, caplog):
    """No WANDB_API_KEY, no netrc, no WANDB_MODE: if this fails, `align train` with `report_to: wandb` would stop at
    a login prompt (or fail) instead of logging offline, or would print no (or several) hints on how to sync."""
    monkeypatch.delenv("WANDB_MODE")
    output_dir = wandb_home / "out"
    with caplog.at_level(logging.WARNING, logger="align.tracker_backends"):
        tracker = _start_wandb(output_dir)
        tracker.log(ROWS[0])
        tracker.finish("finished")
    hints = [r.getMessage() for r in caplog.records if r.name == "align.tracker_backends"]
    assert len(hints) == 1 and "\n" not in hints[0]
    assert "wandb sync" in hints[0] and "WANDB_API_KEY" in hints[0] and str(output_dir / "wandb") in hints[0]
    assert _run_dir(output_dir).name.startswith("offline-run-")


def test_netrc_key_counts_as_configured(wandb_home, monkeypatch):
    """A key saved by `wandb login` (netrc) must keep the run online; if this fails, logged-in users would silently
    get offline runs they then have to sync by hand."""
    netrc = wandb_home / "key.netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "a" * 40 + "\n")
    netrc.chmod(0o600)
    assert not _wandb_credentials_configured()
    monkeypatch.setenv("NETRC", str(netrc))
    assert _wandb_credentials_configured()


def test_tensorboard_missing_is_one_line_user_error(tmp_path, monkeypatch):
    """`report_to: tensorboard` without the tensorboard package must say what to install in one line (exit 2), not
    fail with a torch import traceback. (The package is a dev dependency, so its absence is simulated.)"""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real_find_spec(name, *a)
    )
    for main_process in (True, False):  # every rank stops, not only the one that would write
        with pytest.raises(AlignError) as raised:
            make_tracker("tensorboard", main_process=main_process)
        assert "pip install tensorboard" in str(raised.value) and "\n" not in str(raised.value)


def test_tensorboard_event_file_has_both_stages(tmp_path):
    """With tensorboard installed, the event file must hold `all/loss` over the run-wide steps and per-stage keys."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tracker = make_tracker("tensorboard", main_process=True)
    tracker.start("concise", "concise", {}, tmp_path, stages=["sft", "dpo"])
    for row in ROWS:
        tracker.log(row)
    tracker.finish("finished")
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("all/loss")] == [1, 2, 3]
    assert [e.value for e in events.Scalars("dpo/lengths/chosen")] == [12.5]


class _FakeWriter:
    def __init__(self):
        self.scalars, self.texts, self.closed = [], [], 0

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def add_text(self, tag, text, step=None):
        self.texts.append((tag, text, step))

    def close(self):
        self.closed += 1


def test_tensorboard_tracker_writes_stage_and_all_scalars_and_text(tmp_path, monkeypatch):
    """The tensorboard tracker's calls on its writer (a fake one: tensorboard may not be installed). If this fails,
    tensorboard users get restarting or missing curves, no answers table, or a writer closed twice."""
    writer = _FakeWriter()
    monkeypatch.setattr(TensorBoardTracker, "_make_writer", staticmethod(lambda log_dir: writer))
    monkeypatch.setattr(TensorBoardTracker, "package", None)
    RunOutputs(tmp_path).write_resolved_recipe(RECIPE)
    tracker = make_tracker("tensorboard", main_process=True)
    tracker.start("concise", "concise", {}, tmp_path, stages=["sft", "dpo"])
    for row in ROWS:
        tracker.log(row)
    tracker.log_generations("dpo", 3, RECORDS["dpo"])
    tracker.finish("finished")
    tracker.finish("finished")
    assert [(v, s) for t, v, s in writer.scalars if t == "all/loss"] == [(2.0, 1), (1.5, 2), (0.5, 3)]
    assert ("dpo/lengths/chosen", 12.5, 3) in writer.scalars and ("sft/eval/loss", 1.75, 2) in writer.scalars
    assert [(v, s) for t, v, s in writer.scalars if t == "train/loss"] == [(2.0, 1), (1.5, 2), (0.5, 3)]
    assert ("eval/loss", 1.75, 2) in writer.scalars and ("train/lengths/chosen", 12.5, 3) in writer.scalars
    assert ("stage_index", 1, 3) in writer.scalars
    assert not any("note" in t for t, _, _ in writer.scalars)
    tags = [t for t, _, _ in writer.texts]
    assert tags[0] == "recipe" and "name: concise" in writer.texts[0][1] and "generations/dpo" in tags
    assert writer.closed == 1


def test_generations_markdown_escapes_cells():
    """Answers with `|` or newlines must not break the markdown table's columns."""
    text = generations_markdown([{**RECORDS["dpo"][0], "tuned": "a | b\nc"}])
    header, rule, row = text.splitlines()
    assert header.startswith("| prompt | reference | base answer | current answer |")
    assert row.count(" | ") == header.count(" | ") and "a \\| b<br>c" in row


def test_generation_tables_show_loops_and_cut_answers_next_to_recall():
    """Probe records carry `base_loops`, `tuned_loops`, `base_truncated`, `tuned_truncated`: the wandb table (built
    with a stand-in `wandb.Table`) and the markdown table put them right after key-point recall, titled "base loops",
    "current loops", "base cut at length cap", "current cut at length cap", with each record's values.
    If this fails, the generation tables hide which answers degenerated."""
    flags = {"base_loops": False, "tuned_loops": True, "base_truncated": False, "tuned_truncated": True}
    record = {**RECORDS["sft"][0], **flags}
    fake_wandb = SimpleNamespace(Table=lambda columns, data: {"columns": columns, "data": data})
    table = _wandb_table(fake_wandb, [{"stage": "sft", "step": 2, **record}])
    columns = table["columns"]
    assert columns[columns.index("current key-point recall") + 1 :] == [
        "base loops",
        "current loops",
        "base cut at length cap",
        "current cut at length cap",
    ]
    assert table["data"][0][-4:] == [False, True, False, True]
    header, _, row = generations_markdown([record]).splitlines()
    assert header.endswith("| base loops | current loops | base cut at length cap | current cut at length cap |")
    assert row.endswith("| False | True | False | True |")


def test_noop_tracker_accepts_every_call(tmp_path):
    """`report_to: none` and non-main processes get the no-op tracker: every call must be accepted and send nothing;
    if this fails, runs without a tracker (or rank > 0) would crash."""
    tracker = make_tracker("none", main_process=True)
    assert type(tracker) is Tracker
    tracker.start("r", "g", {"a": 1}, tmp_path, stages=["sft"])
    tracker.log(ROWS[0])
    tracker.log_generations("sft", 1, RECORDS["sft"])
    tracker.set_summary(SUMMARY)
    tracker.finish("finished")
    tracker.finish("failed")
    assert list(tmp_path.iterdir()) == []
    assert type(make_tracker("wandb", main_process=False)) is Tracker
    with pytest.raises(AlignError, match="not one of none, wandb, tensorboard"):
        make_tracker("mlflow", main_process=True)
    assert type(make_tracker([], main_process=True)) is Tracker
    assert type(make_tracker(["none"], main_process=True)) is Tracker


class _Recorder(Tracker):
    def __init__(self):
        super().__init__()
        self.rows = []

    def log(self, row):
        self.rows.append(row)


def test_metrics_callback_writes_jsonl_and_forwards_rows(tmp_path):
    """Each trainer log is one metrics.jsonl row (stage, run-wide step, stage step) and the same row for the tracker
    (infinite values kept as numbers there, as strings in the JSON file). Rank > 0 writes and forwards nothing."""
    outputs = RunOutputs(tmp_path)
    recorder = _Recorder()
    callback = MetricsJsonlCallback(outputs, "dpo", 10, recorder)
    state = SimpleNamespace(is_world_process_zero=True, global_step=3)
    callback.on_log(None, state, None, logs={"loss": 0.5, "grad_norm": math.inf})
    callback.on_log(None, SimpleNamespace(is_world_process_zero=False, global_step=4), None, logs={"loss": 0.4})
    rows = [json.loads(line) for line in outputs.metrics_path.read_text().splitlines()]
    assert rows == [{"stage": "dpo", "step": 13, "stage_step": 3, "loss": 0.5, "grad_norm": "inf"}]
    assert recorder.rows == [{"stage": "dpo", "step": 13, "stage_step": 3, "loss": 0.5, "grad_norm": math.inf}]
    MetricsJsonlCallback(outputs, "sft", 0).on_log(None, state, None, logs={"loss": 1.0})  # no tracker: still fine
    assert yaml.safe_load(outputs.metrics_path.read_text().splitlines()[-1])["stage"] == "sft"


def test_trl_names_only_for_trainer_logs():
    """Trainer logs (rows with `stage_step`) get the names transformers' integrations give them: `eval_<key>` →
    `eval/<key>`, others `train/<key>` (the eval row's `epoch` too, as `rewrite_logs` does); a probe row (no
    `stage_step`) gets none. If this fails, trl panels show held-out figures as training ones, or probe figures
    pose as trainer logs."""
    assert trl_figures({"stage": "dpo", "step": 9, "stage_step": 4, "eval_loss": 0.5, "epoch": 1.0}) == {
        "eval/loss": 0.5,
        "train/epoch": 1.0,
    }
    assert trl_figures(ROWS[2]) == {"train/loss": 0.5, "train/lengths/chosen": 12.5, "train/rewards/accuracies": 0.75}
    assert trl_figures({"stage": "dpo", "step": 9, "probe/loop_rate": 0.25}) == {}


def test_wandb_dir_is_honoured(wandb_home, monkeypatch):
    """With WANDB_DIR set, the wandb run folder lands in `$WANDB_DIR/wandb/` and not in OUTPUT/wandb/. If this fails,
    a cluster's WANDB_DIR (e.g. on scratch space) is ignored and run files fill the output folder."""
    elsewhere = wandb_home / "scratch"
    monkeypatch.setenv("WANDB_DIR", str(elsewhere))
    output_dir = wandb_home / "out"
    tracker = _start_wandb(output_dir)
    tracker.log(ROWS[0])
    tracker.finish("finished")
    assert not (output_dir / "wandb").exists()
    assert _run_dir(elsewhere).name.startswith("offline-run-")


def test_report_to_list_sends_every_row_to_wandb_and_tensorboard(wandb_home):
    """`report_to: [wandb, tensorboard]`: one tracker that gives each call to both, each writing its own files with
    the same figures. If this fails, a list silently keeps one tracker, or the second one misses rows or never
    closes (tensorboard's event file would lack the last scalars)."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    output_dir = wandb_home / "out"
    RunOutputs(output_dir).prepare()
    tracker = make_tracker(["wandb", "tensorboard"], main_process=True)
    assert isinstance(tracker, MultiTracker) and [t.name for t in tracker.trackers] == ["wandb", "tensorboard"]
    tracker.start("concise:sft+dpo", "concise", {}, output_dir, stages=["sft", "dpo"])
    for row in ROWS:
        tracker.log(row)
    tracker.finish("finished")
    history = [r["history"]["item"] for r in _read_run(_run_dir(output_dir)) if r["type"] == "history"]
    assert [h["train/loss"] for h in history if "train/loss" in h] == [2.0, 1.5, 0.5]
    events = EventAccumulator(str(output_dir / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(1, 2.0), (2, 1.5), (3, 0.5)]
    assert [e.value for e in events.Scalars("eval/loss")] == [1.75]


def test_multi_tracker_finishes_every_tracker_when_one_fails():
    """A tracker that fails to close must not leave the others open (their last figures unflushed), nor one that
    fails to start leave an earlier one running; the failure is still raised."""

    class Failing(Tracker):
        def finish(self, status="finished"):
            raise RuntimeError("upload failed")

    closed = []

    class Closing(Tracker):
        def finish(self, status="finished"):
            closed.append(status)

    tracker = MultiTracker([Failing(), Closing()])
    with pytest.raises(RuntimeError, match="upload failed"):
        tracker.finish("failed")
    assert closed == ["failed"]

    class NoStart(Tracker):
        def start(self, *args, **kwargs):
            raise AlignError("report_to: tensorboard cannot write its folder")

    closed.clear()
    with pytest.raises(AlignError, match="cannot write"):
        MultiTracker([Closing(), NoStart()]).start("r", "g", {}, Path("."))
    assert closed == ["failed"]  # the tracker already started is closed, marked failed, not left open

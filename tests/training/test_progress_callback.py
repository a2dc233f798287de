"""The trainer's progress, labelled with the stage: swapped in for transformers' bar, plain lines off a terminal."""

from __future__ import annotations

import io
from types import SimpleNamespace

from transformers import PrinterCallback, ProgressCallback

from align.training.progress_callback import StageProgressCallback, label_progress


class _Trainer:
    def __init__(self, callback):
        self.callbacks = [callback]

    def pop_callback(self, kind):
        found = next((c for c in self.callbacks if c is kind or type(c) is kind), None)
        if found is not None:
            self.callbacks.remove(found)
        return found

    def add_callback(self, callback):
        self.callbacks.append(callback)


def test_label_progress_replaces_the_unlabelled_bar_only():
    """transformers' bar is replaced by the stage's; a trainer printing its logs instead (disable_tqdm) is left as
    it is. If this fails, a run draws two bars per stage, or bars the user turned off."""
    with_bar = _Trainer(ProgressCallback())
    label_progress(with_bar, "easy")
    assert [type(c) for c in with_bar.callbacks] == [StageProgressCallback]
    assert with_bar.callbacks[0].stage == "easy"
    printer = _Trainer(PrinterCallback())
    label_progress(printer, "easy")
    assert [type(c) for c in printer.callbacks] == [PrinterCallback]


def test_a_resumed_stage_counts_from_its_checkpoint(monkeypatch, capsys):
    """A stage resumed at step 6 of 10 starts its count there and ends at 10/10, in plain lines with the stage's
    label. If this fails, a resumed stage's progress overshoots or undercounts."""
    monkeypatch.setattr("sys.stderr", io.StringIO())
    import sys

    callback = StageProgressCallback("hard")
    state = SimpleNamespace(is_world_process_zero=True, max_steps=10, global_step=6)
    callback.on_train_begin(None, state, None)
    for step in (7, 8, 9, 10):
        state.global_step = step
        callback.on_step_end(None, state, None)
    callback.on_log(None, state, None, logs={"loss": 0.123456, "total_flos": 1.0})
    callback.on_train_end(None, state, None)
    lines = sys.stderr.getvalue().splitlines()
    assert lines[0].startswith("hard train: 6/10 (60%)")
    assert lines[-1].startswith("hard train: 10/10 (100%)")
    assert "\r" not in sys.stderr.getvalue()
    assert capsys.readouterr().out == "hard: {'loss': '0.1235'}\n"

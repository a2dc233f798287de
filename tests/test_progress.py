"""Progress bars as plain lines off a terminal, tqdm on one; stage headers and the run-wide time left."""

from __future__ import annotations

import io
import os

import pytest

from align.progress import (
    LIBRARY_BAR_SWITCHES,
    StageClock,
    format_duration,
    progress_bar,
    quiet_library_bars,
    stage_header,
    time_left,
)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_off_a_terminal_every_tenth_and_at_the_end(monkeypatch):
    """Off a terminal: one line per tenth of the way, each with the label and count, and no carriage return. If this
    fails, a log file of a training job fills with `\\r` bar redraws, or shows nothing."""
    monkeypatch.delenv("RANK", raising=False)
    out = io.StringIO()
    with progress_bar(20, "probes: tuned answers", stream=out) as bar:
        for _ in range(20):
            bar.update(1)
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("probes: tuned answers: 2/20 (10%)")
    assert lines[-1].startswith("probes: tuned answers: 20/20 (100%)") and "left" not in lines[-1]


def test_plain_lines_for_jumps_and_an_unfinished_count(monkeypatch):
    """An update across several tenths prints one line; closing before the end prints where it stopped. If this
    fails, batched updates flood the log, or a stopped task's last count is lost."""
    monkeypatch.delenv("RANK", raising=False)
    out = io.StringIO()
    bar = progress_bar(10, "sampling answers", stream=out)
    bar(8)  # usable as a `progress(n)` callback
    bar(1)
    bar.close()
    bar.close()
    assert out.getvalue().splitlines() == [
        "sampling answers: 8/10 (80%), 0 s, 0 s left",
        "sampling answers: 9/10 (90%), 0 s, 0 s left",
    ]


def test_a_terminal_gets_a_labelled_tqdm_bar(monkeypatch):
    """On a terminal the bar is tqdm's, labelled. If this fails, a person at a terminal sees no live bar."""
    monkeypatch.delenv("RANK", raising=False)
    out = _Terminal()
    with progress_bar(4, "align eval: tuned", stream=out) as bar:
        bar.update(4)
    assert "\r" in out.getvalue() and "align eval: tuned" in out.getvalue() and "4/4" in out.getvalue()


def test_only_the_main_process_draws(monkeypatch):
    """Under a launcher only rank 0 draws. If this fails, an 8-GPU run prints every bar 8 times."""
    monkeypatch.setenv("RANK", "3")
    out = io.StringIO()
    with progress_bar(2, "x", stream=out) as bar:
        bar.update(2)
        bar.write("a line")
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "unknown"),
        (0.4, "0 s"),
        (59.4, "59 s"),
        (61, "1 min"),
        (150, "3 min"),
        (3599, "1 h 00 min"),
        (3600 + 5 * 60 + 10, "1 h 05 min"),
    ],
)
def test_format_duration(seconds, text):
    """Durations read as a person says them. If this fails, the time left is printed wrongly rounded."""
    assert format_duration(seconds) == text


def test_time_left_is_seconds_per_step_times_steps_left():
    """120 s over 24 steps is 5 s a step; 30 steps left take 150 s; nothing timed yet is unknown (None)."""
    assert time_left(120.0, 24, 30) == pytest.approx(150.0)
    assert time_left(0.0, 0, 30) is None


def test_stage_header_text():
    """The header reads `stage 2/3 easy: 96 rows, 24 steps; run time left: …`."""
    assert stage_header(2, 3, "easy", 96, 24, 150) == "stage 2/3 easy: 96 rows, 24 steps; run time left: 3 min"


def test_stage_clock_estimates_from_the_stages_timed_so_far():
    """Stage 1 has no estimate; at stage 2 (after 24 steps in 120 s) its own 24 steps plus stage 3's planned 6 take
    5 s each: 150 s ≈ 3 min; at stage 3, 48 steps in 300 s give 6.25 s × 6 = 37.5 s ≈ 38 s. Stage 2's actual step count
    replaces its plan. If this fails, the time left is computed from the wrong steps or the wrong times."""
    times = iter([0.0, 120.0, 300.0])
    out = io.StringIO()
    clock = StageClock({"warmup": 24, "easy": 99, "hard": 6}, stream=out, now=lambda: next(times))
    assert clock.start("warmup", 96, 24).endswith("run time left: unknown")
    clock.finish(24)
    assert clock.start("easy", 96, 24) == "stage 2/3 easy: 96 rows, 24 steps; run time left: 3 min"
    clock.finish(24)
    assert clock.start("hard", 20, 6) == "stage 3/3 hard: 20 rows, 6 steps; run time left: 38 s"
    assert out.getvalue().splitlines()[0] == "stage 1/3 warmup: 96 rows, 24 steps; run time left: unknown"


def test_stage_clock_is_silent_off_the_main_process():
    """`show=False` (processes other than the main one) prints nothing."""
    out = io.StringIO()
    StageClock({"a": 1}, show=False, stream=out).start("a", 4, 1)
    assert out.getvalue() == ""


def test_library_bars_are_switched_off_only_off_a_terminal(monkeypatch):
    """Off a terminal the libraries' own bars (weights, dataset mapping) are switched off, a user's own setting
    kept; on a terminal nothing changes. If this fails, logs get transformers' and datasets' `\\r` bars, or a user
    loses bars they asked for."""
    for name in LIBRARY_BAR_SWITCHES:
        monkeypatch.setenv(name, "-")  # recorded, so what quiet_library_bars sets is undone after the test
        monkeypatch.delenv(name)
    quiet_library_bars(_Terminal())
    assert not any(name in os.environ for name in LIBRARY_BAR_SWITCHES)
    monkeypatch.setenv(LIBRARY_BAR_SWITCHES[0], "0")
    quiet_library_bars(io.StringIO())
    assert [os.environ[name] for name in LIBRARY_BAR_SWITCHES] == ["0", "1"]

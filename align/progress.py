"""Progress a person can follow: the one place that draws progress bars, and the header each training stage starts
with (its rows, its steps, and the run-wide time left).

On a terminal a bar is tqdm's; when the stream is not a terminal (a log file, a batch job, a pipe) it is plain lines
at every tenth of the way and at the end, with no carriage returns that would garble the log. Only the main process
(`RANK` 0, or no `RANK`) draws anything, so a multi-process run shows one bar per task, not one per process.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

#: Plain-line progress prints a line each time this share of the total more is done.
LINE_EVERY = 0.1


#: The environment switches that turn off the libraries' own bars (weight loading, dataset mapping, downloads).
LIBRARY_BAR_SWITCHES = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")


def quiet_library_bars(stream: TextIO | None = None) -> None:
    """Off a terminal, turn off the libraries' own tqdm bars, which redraw with carriage returns: a log then holds
    align's plain lines only. Set before the libraries are imported (they read the switches once); a switch the user
    set is kept. Launched processes inherit them."""
    if not _is_terminal(stream if stream is not None else sys.stderr):
        for name in LIBRARY_BAR_SWITCHES:
            os.environ.setdefault(name, "1")


def is_main_process() -> bool:
    """Whether this is the process that reports (rank 0 under a launcher; the only one otherwise)."""
    return os.environ.get("RANK", "0") == "0"


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def format_duration(seconds: float | None) -> str:
    """`unknown` for None, else a human duration rounded half up: `45 s`, `12 min`, `2 h 05 min`."""
    if seconds is None:
        return "unknown"
    seconds = int(max(0.0, seconds) + 0.5)  # halves up, unlike round()
    if seconds < 60:
        return f"{seconds} s"
    minutes = int(seconds / 60 + 0.5)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class Progress:
    """A labelled progress counter: `update(n)` (or calling it: it is a `progress(n)` callback), `write(text)` for a
    line that does not break the bar, `close()` (or use it as a context manager). `total` counts items of any kind
    (prompts, rows, optimizer steps). Plain lines read `desc: done/total (share), time so far, time left`."""

    def __init__(self, total: int, desc: str, stream: TextIO | None = None, enabled: bool | None = None):
        self.total, self.desc, self.done = total, desc, 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = is_main_process() if enabled is None else enabled
        self._bar = None
        self._next_line = LINE_EVERY  # the share of `total` from which the next plain line is printed
        self._printed_at: int | None = None  # `done` when the last plain line was printed
        self._closed = False
        self._started = time.monotonic()
        if self.enabled and _is_terminal(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, file=self.stream, dynamic_ncols=True)

    def __call__(self, n: int = 1) -> None:
        self.update(n)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and self.total and self.done / self.total >= self._next_line:
            self._line()

    def write(self, text: str, stream: TextIO | None = None) -> None:
        """Print `text` as a line of its own on `stream` (the bar's by default), above the bar on a terminal."""
        if not self.enabled:
            return
        target = stream if stream is not None else self.stream
        if self._bar is not None:
            self._bar.write(text, file=target)
        else:
            print(text, file=target, flush=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self._printed_at != self.done:
            self._line()  # the last update printed no line (or there was none): say where it ended

    def _line(self) -> None:
        share = self.done / self.total if self.total else 1.0
        elapsed = time.monotonic() - self._started
        left = time_left(elapsed, self.done, self.total - self.done) if self.done < self.total else None
        rest = f", {format_duration(left)} left" if left is not None else ""
        line = f"{self.desc}: {self.done}/{self.total} ({share:.0%}), {format_duration(elapsed)}{rest}"
        print(line, file=self.stream, flush=True)
        self._printed_at = self.done
        # The next line at the next tenth beyond this one (an update that jumps several tenths prints once).
        self._next_line = (int(share / LINE_EVERY + 1e-9) + 1) * LINE_EVERY


def progress_bar(total: int, desc: str, stream: TextIO | None = None, enabled: bool | None = None) -> Progress:
    """A progress bar over `total` items labelled `desc`, on `stream` (stderr by default): tqdm on a terminal, plain
    lines otherwise; silent off the main process unless `enabled` says otherwise."""
    return Progress(total, desc, stream, enabled)


def time_left(elapsed_s: float, steps_done: int, steps_left: int) -> float | None:
    """Seconds the `steps_left` optimizer steps will take at the seconds per step so far (`elapsed_s` over
    `steps_done`); None while no step has been timed."""
    if steps_done <= 0:
        return None
    return elapsed_s / steps_done * steps_left


def stage_header(number: int, stages: int, name: str, rows: int, steps: int, left_s: float | None) -> str:
    """`stage 2/3 easy: 96 rows, 24 steps; run time left: 3 min`."""
    return f"stage {number}/{stages} {name}: {rows} rows, {steps} steps; run time left: {format_duration(left_s)}"


@dataclass
class StageClock:
    """Times a run's stages to print each stage's header with the run-wide time left: the wall time since the
    first stage started over the optimizer steps finished since (so held-out eval, probes and on-policy sampling
    count too, as they are part of the wait), times the steps of this stage and of every later one.

    `planned`: every stage of the recipe in order, name → its planned optimizer steps (later stages' steps are
    estimates until their rows are known). `now`: the clock, in seconds."""

    planned: dict[str, int]
    show: bool = True
    stream: TextIO | None = None
    now: Callable[[], float] = time.monotonic
    _first_start: float | None = field(default=None, repr=False)
    _steps_done: int = 0

    def start(self, name: str, rows: int, steps: int) -> str:
        """Stage `name` starts with `rows` training rows and `steps` optimizer steps; print and return its header."""
        names = list(self.planned)
        self.planned[name] = steps
        later = sum(self.planned[n] for n in names[names.index(name) + 1 :])
        now = self.now()
        if self._first_start is None:
            self._first_start = now
        left = time_left(now - self._first_start, self._steps_done, steps + later)
        header = stage_header(names.index(name) + 1, len(names), name, rows, steps, left)
        if self.show:
            print(header, file=self.stream if self.stream is not None else sys.stderr, flush=True)
        return header

    def finish(self, steps: int) -> None:
        """The stage started last has finished after `steps` optimizer steps."""
        self._steps_done += steps

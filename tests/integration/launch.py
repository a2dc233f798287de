"""Launching `align train` the way users do, for the multi-process tests: `accelerate launch` (one machine or a
simulated second one on loopback) and plain one-process runs, with a hard timeout that kills every child."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ACCELERATE = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
# One thread per process: the test machine has 2 cores and runs 2 processes; also keeps float sums reproducible.
ENV = {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "DS_ACCELERATOR": "cpu"}


def free_port() -> int:
    """A TCP port nobody listens on now (the rendezvous of one launch)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_args(recipe: str | Path, model_dir, out: Path, *overrides: str) -> list[str]:
    """`train RECIPE --set model.name=MODEL --set ... --output-dir OUT`; `recipe` relative to recipes/tiny/."""
    sets = [arg for override in overrides for arg in ("--set", override)]
    path = recipe if Path(recipe).is_absolute() else REPO / "recipes" / "tiny" / recipe
    return ["train", str(path), "--set", f"model.name={model_dir}", *sets, "--output-dir", str(out)]


def run(cmd: list[str], timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `cmd` in its own process group; past `timeout` seconds kill the whole group (launcher and every rank) and
    fail, so a hang in a collective fails the test instead of stalling the suite."""
    return run_together([cmd], timeout, env)[0]


def run_together(cmds: list[list[str]], timeout: float, env: dict | None = None) -> list[subprocess.CompletedProcess]:
    """Start every command at once (e.g. one launcher per simulated machine) and wait for all; past `timeout`
    seconds in all, kill every process group and fail. Output goes to files, not pipes: a process blocked on a full
    pipe while another waits for it in a collective would look like a hang."""
    logs = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in cmds]
    env = {**os.environ, **ENV, **(env or {})}
    procs = [
        subprocess.Popen(cmd, stdout=out, stderr=err, text=True, start_new_session=True, env=env)
        for cmd, (out, err) in zip(cmds, logs, strict=True)
    ]
    deadline = time.monotonic() + timeout
    try:
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        raise AssertionError(f"{' '.join(cmds[0][:6])}... still running after {timeout} s (hang?)") from None
    results = []
    for cmd, proc, (out, err) in zip(cmds, procs, logs, strict=True):
        out.seek(0), err.seek(0)
        results.append(subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read()))
        out.close(), err.close()
    return results


def launch(launch_args: list[str], args: list[str], timeout: float = 300, env: dict | None = None):
    """`accelerate launch LAUNCH_ARGS -m align ARGS`."""
    return run([ACCELERATE, "launch", *launch_args, "-m", "align", *args], timeout, env)


def two_cpu_processes(port: int) -> list[str]:
    """Launcher flags for 2 processes over gloo on a machine without a GPU (align sets the process state up)."""
    return [
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(port),
    ]


def one_process(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m align ARGS` in one process."""
    return run([sys.executable, "-m", "align", *args], timeout)


def device_free_config(name: str, folder: Path) -> Path:
    """A copy of the shipped `recipes/accelerate/NAME` with only its device keys changed for a CPU: mixed precision
    off (bf16 autocast would make the comparison with fp32 one-process runs inexact). `use_cpu` stays false: with it
    `accelerate launch` starts a single process."""
    text = (REPO / "recipes" / "accelerate" / name).read_text(encoding="utf-8")
    lines = ['mixed_precision: "no"' if line.startswith("mixed_precision:") else line for line in text.splitlines()]
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def step_rows(out: Path) -> list[dict]:
    """The training rows of `OUT/metrics.jsonl` (those with a `loss`), in file order."""
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [row for row in rows if "loss" in row]

"""The model cache: each short-named model is prepared once into `CACHE/models/<name>/`, however many processes or
runs ask for it at the same time, and a folder there that align did not finish is rebuilt, never trusted.

*Complete* means: the marker file `.align-complete`, written last into the staging folder before the rename that
publishes it, names this model and its preparer and lists every file with its size in bytes, and every listed file is
there with that size. Anything else (a preparation cut off, a folder copied in by hand, a marker of another model, a
deleted weights file) is rebuilt with one warning line.

Preparation holds an exclusive `flock` on `models/.<name>.lock`, so one process prepares while the others wait and
then find the finished folder: the ranks of one launch, two unrelated runs, and, on a cache shared between nodes over
NFS (where Linux emulates flock with POSIX byte-range locks), the processes of every node.

Once a torch process group exists, transformers' `save_pretrained` writes a model's config and weights only on rank
0 (its tokenizer on every rank): a preparer run by any other rank wrote a tokenizer-only folder, the cause of the
`Directory not empty` crash on a cold cache under `accelerate launch`. So in a process with a process group the
preparer runs in a fresh Python process, which has none.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from align.errors import AlignError

logger = logging.getLogger(__name__)

MARKER = ".align-complete"
Preparer = Callable[[Path], None]
# What a prepared folder must hold besides the marker: any one file of each group.
REQUIRED_FILES = {
    "config": ("config.json",),
    "weights": ("model.safetensors", "model.safetensors.index.json"),
    "tokenizer": ("tokenizer.json", "tokenizer.model", "vocab.json"),
}
_CHILD = "import sys; from align.models.cache import run_preparer_by_name; run_preparer_by_name(*sys.argv[1:])"


def preparer_id(preparer: Preparer) -> str:
    """`module.qualname` of a preparer: recorded in the marker, and how a fresh process finds it."""
    return f"{preparer.__module__}.{preparer.__qualname__}"


def incomplete_reason(folder: Path, name: str, preparer: Preparer) -> str | None:
    """Why `folder` is not a complete preparation of model `name` by `preparer`; None when it is."""
    if folder.is_symlink() or not folder.is_dir():
        return "not a folder" if folder.exists() or folder.is_symlink() else "missing"
    try:
        record = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"no {MARKER} marker: a preparation cut off, or a folder align did not write"
    except (OSError, ValueError):
        return f"unreadable {MARKER} marker"
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        return f"malformed {MARKER} marker"
    if (record.get("name"), record.get("preparer")) != (name, preparer_id(preparer)):
        return f"marker of {record.get('name')!r} by {record.get('preparer')!r}"
    for relative, size in record["files"].items():
        path = folder / relative
        if not path.is_file():
            return f"{relative} is missing"
        if path.stat().st_size != size:
            return f"{relative} has {path.stat().st_size} bytes, the marker says {size}"
    return None


def prepare_cached(name: str, preparer: Preparer, root: Path, force: bool = False) -> Path:
    """`root/name`, prepared by `preparer` unless it is already complete (or `force`); see the module docstring."""
    target = root / name
    if not force and incomplete_reason(target, name, preparer) is None:
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive(root / f".{name}.lock", name) as locked:
        reason = incomplete_reason(target, name, preparer)
        if reason is None and not force:
            return target  # another process finished it while this one waited for the lock
        if reason != "missing":
            if reason is not None:
                logger.warning("model cache: %s is incomplete (%s); rebuilding it", target, reason)
            _discard(target)
        for leftover in root.glob(f".{name}.staging-*") if locked else ():  # a killed preparation's (it held the lock)
            shutil.rmtree(leftover, ignore_errors=True)
        _build(name, preparer, target)
    return target


@contextlib.contextmanager
def _exclusive(lock_path: Path, name: str) -> Iterator[bool]:
    """Hold an exclusive flock on `lock_path` (created if needed) and yield True; closing the file releases it, also
    when the process dies. A file system without locks gets a warning and False: the rename in `_build` still
    publishes only a complete folder."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        locked = True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.warning("model cache: another process is preparing %s; waiting for it", name)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            logger.warning("model cache: cannot lock %s (%s); preparing %s without a lock", lock_path, exc, name)
            locked = False
        yield locked
    finally:
        os.close(fd)


def _discard(path: Path) -> None:
    """Remove a file, link or folder; a folder is renamed aside first so no reader sees it half deleted."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.staging-stale-", dir=path.parent))
        os.replace(path, aside / path.name)
        shutil.rmtree(aside, ignore_errors=True)


def _build(name: str, preparer: Preparer, target: Path) -> None:
    """Prepare into a staging folder next to `target`, check it, write the marker last, rename it into place."""
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.staging-", dir=target.parent))
    try:
        if _process_group_active():
            _prepare_in_fresh_process(name, preparer, staging)
        else:
            preparer(staging)
        _check_prepared(name, staging)
        _write_marker(staging, name, preparer)
        try:
            os.rename(staging, target)
        except OSError:
            # Only without a lock can another process have published it first; its copy is as good as ours.
            if incomplete_reason(target, name, preparer) is not None:
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _process_group_active() -> bool:
    torch = sys.modules.get("torch")  # never imported here just to ask: no torch, no process group
    return bool(torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized())


def _check_prepared(name: str, folder: Path) -> None:
    missing = [what for what, names in REQUIRED_FILES.items() if not any((folder / n).is_file() for n in names)]
    if missing:
        found = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise RuntimeError(f"preparing model {name!r} wrote no {' or '.join(missing)} file (wrote: {found})")


def _write_marker(folder: Path, name: str, preparer: Preparer) -> None:
    files = {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    record = {"name": name, "preparer": preparer_id(preparer), "files": files}
    (folder / MARKER).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def _prepare_in_fresh_process(name: str, preparer: Preparer, staging: Path) -> None:
    """Run `preparer` in a new Python process (no process group there, so transformers writes every file)."""
    if "<locals>" in preparer.__qualname__:
        raise RuntimeError(f"model {name!r}: its preparer {preparer_id(preparer)} cannot be run in a fresh process")
    cmd = [sys.executable, "-c", _CHILD, preparer.__module__, preparer.__qualname__, str(staging)]
    logger.info("model cache: preparing %s in a separate process (a torch process group is active here)", name)
    done = subprocess.run(cmd, capture_output=True, text=True)
    lines = done.stderr.strip().splitlines()
    if done.returncode == 2:  # an AlignError there: its one-line problems
        raise AlignError([line.removeprefix("error: ") for line in lines if line.startswith("error: ")] or lines[-1:])
    if done.returncode != 0:
        raise RuntimeError(f"preparing model {name!r} failed in a separate process: {(lines or ['no output'])[-1]}")


def run_preparer_by_name(module: str, qualname: str, target: str) -> None:
    """The fresh process's side: import the preparer, run it on `target`; an `AlignError` exits 2 with its lines."""
    preparer = importlib.import_module(module)
    for part in qualname.split("."):
        preparer = getattr(preparer, part)
    try:
        preparer(Path(target))
    except AlignError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)

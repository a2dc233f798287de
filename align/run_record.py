"""What a run needs to be reproduced, for `summary.json`: the `environment` block (align version and commit, Python,
the libraries' versions, device, dtype, world size) and `data_files`, the sha256 of every data file the recipe reads.

    summary.update(run_record(loaded, model))   # {"environment": {...}, "data_files": [...]}

Data files are hashed when training starts (a file changed later, mid-run, is not noticed). A local file's digest is
`hashlib.sha256` of its bytes; a `datasets.save_to_disk` folder's is the sha256 of its manifest, one line
`<relative path>\\0<sha256 of the file>\\n` per file in sorted path order (so renaming, adding or changing any file
changes it); a Hub dataset id has no local bytes to hash: `sha256` is null and `reason` says why.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import platform
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import align

logger = logging.getLogger(__name__)

#: Distributions whose versions decide what a run computes; `deepspeed` is listed only when installed.
LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets")
OPTIONAL_LIBRARIES = ("deepspeed",)
GIT_TIMEOUT_S = 5
_CHUNK = 2**20


def version(distribution: str) -> str | None:
    """The installed version of `distribution` (importlib.metadata), or None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(args: list[str], cwd: Path) -> str | None:
    """`git ARGS` run in `cwd`: its stripped output, or None when git is missing, fails or takes too long."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def source_commit(package_dir: Path | None = None) -> dict[str, Any] | None:
    """`{"commit": sha, "dirty": bool}` of the git checkout align is imported from, or None when align is not run
    from one (an installed wheel, no git, a timeout). The checkout must hold the package at its top level: a wheel
    installed into a virtualenv inside some other repository is not that repository's code."""
    package_dir = Path(package_dir or Path(align.__file__).parent).resolve()
    top = _git(["rev-parse", "--show-toplevel"], package_dir)
    if not top or Path(top).resolve() != package_dir.parent:
        return None
    commit = _git(["rev-parse", "HEAD"], package_dir)
    if not commit:
        return None
    # Uncommitted changes to tracked files mean the commit alone does not name the code that ran.
    changes = _git(["status", "--porcelain", "--untracked-files=no"], package_dir)
    return {"commit": commit, "dirty": None if changes is None else bool(changes)}


def _dtype(model) -> str | None:
    """The loaded weights' dtype, e.g. "bfloat16": a transformers model's `dtype` (its first floating-point
    parameter's), else its first parameter's."""
    dtype = getattr(model, "dtype", None)
    if dtype is None:
        try:
            dtype = next(model.parameters()).dtype
        except (StopIteration, AttributeError):
            return None
    return str(dtype).removeprefix("torch.")


def training_device(device, use_cpu: bool) -> str:
    """Where this process trains: accelerate's device for it (the trainer moves the model there), or "cpu" when
    every stage sets `use_cpu`; a CUDA device with its name, e.g. "cuda:0 (NVIDIA H100 80GB HBM3)"."""
    import torch

    device = torch.device("cpu") if use_cpu else torch.device(device)
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def environment(model, world_size: int, device: str) -> dict[str, Any]:
    """summary.json's `environment`: align's version and git commit (null outside a checkout), Python, platform,
    the libraries' versions, the training `device`, the loaded model's dtype, and the number of processes."""
    libraries = {name: version(name) for name in LIBRARIES}
    libraries.update({name: version(name) for name in OPTIONAL_LIBRARIES if version(name) is not None})
    return {
        "align": version("align") or getattr(align, "__version__", None),
        "git": source_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": libraries,
        "device": device,
        "dtype": _dtype(model),
        "world_size": world_size,
    }


@dataclass
class DataFile:
    """One data input of the run: `path` as the recipe wrote it, `resolved` the absolute path (None for a Hub id),
    `kind` file | save_to_disk | hub, `sha256` (None with a `reason` when there are no local bytes), `bytes` its
    size (all files of a folder), and `used_by`, e.g. ["concise: train", "concise: eval.prompts"]."""

    path: str
    resolved: str | None
    kind: str
    sha256: str | None
    bytes: int | None
    used_by: list[str]
    reason: str | None = None


def file_sha256(path: Path) -> str:
    """hashlib's sha256 of the file's bytes, as hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def folder_sha256(folder: Path) -> tuple[str, int]:
    """(sha256 of the folder's manifest, total bytes): one `<relative path>\\0<file sha256>\\n` line per file under
    `folder`, in sorted path order."""
    manifest, size = hashlib.sha256(), 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        manifest.update(f"{path.relative_to(folder).as_posix()}\0{file_sha256(path)}\n".encode())
        size += path.stat().st_size
    return manifest.hexdigest(), size


def _inputs(loaded) -> list[tuple[str, str]]:
    """(path as written, use) of every data input, in recipe order: each stage's train and eval sources, the prompts
    its on-policy rows are sampled for, and its probe prompts."""
    inputs = []
    for stage in loaded.recipe.stages:
        for role in ("train", "eval"):
            inputs += [(source.path, f"{stage.name}: {role}") for source in getattr(stage.data, role)]
        if stage.data.generate is not None:
            inputs.append((stage.data.generate.prompts, f"{stage.name}: data.generate.prompts"))
        if stage.eval.prompts:
            inputs.append((stage.eval.prompts, f"{stage.name}: eval.prompts"))
    return inputs


def _describe(path: str, base_dir: Path) -> DataFile:
    from align.data.formats.readers import resolve_input

    target = resolve_input(path, base_dir)
    if target is None:
        reason = "a Hub dataset id: no local bytes to hash (datasets caches it by revision)"
        return DataFile(path, None, "hub", None, None, [], reason)
    target = target.resolve()
    if target.is_dir():
        digest, size = folder_sha256(target)
        return DataFile(path, str(target), "save_to_disk", digest, size, [])
    return DataFile(path, str(target), "file", file_sha256(target), target.stat().st_size, [])


def data_files(loaded) -> list[DataFile]:
    """Every data input of `loaded`'s stages once (by resolved path, or by id for the Hub), with its digest."""
    found: dict[str, DataFile] = {}
    for path, use in _inputs(loaded):
        described = _describe(path, loaded.base_dir)
        key = described.resolved or f"hub:{path}"
        if key not in found:
            found[key] = described
        found[key].used_by.append(use)
    return list(found.values())


def run_record(loaded, model) -> dict[str, Any]:
    """summary.json's reproducibility facts: `environment` (of this process, with its training device and the
    loaded `model`'s dtype) and `data_files` (a list of `DataFile` mappings). The main process computes them
    (hashing reads every data file once); other processes get an empty mapping."""
    from align.runtime import process_state

    state = process_state()
    if not state.is_main_process:
        return {}
    use_cpu = all(loaded.stage_training(stage).get("use_cpu") is True for stage in loaded.recipe.stages)
    return {
        "environment": environment(model, state.num_processes, training_device(state.device, use_cpu)),
        "data_files": [asdict(item) for item in data_files(loaded)],
    }

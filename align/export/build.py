"""`align export`: write a merged model or a portable adapter (with tokenizer, chat template and model card) from a
run or an adapter folder, into a folder and/or a Hub repo.

The folder is written under a temporary name beside its destination and renamed into place when complete, so a
failed export never leaves a half-written model that looks finished.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from align.errors import AlignError, Problem
from align.export.adapter_folder import ADAPTER_CONFIG, CARD, has_tokenizer, set_base_model
from align.export.card import ADAPTER, MERGED, render_card
from align.export.push import check_repo_id, push_folder
from align.export.source import ExportSource, find_source
from align.outputs import atomic_write_text

ADAPTER_WEIGHTS = "adapter_model.safetensors"


@dataclass(frozen=True)
class ExportRequest:
    """What `align export` was asked for (its flags).

    Attributes:
        source: a run folder or an adapter folder.
        output_dir: where to write the export; None only with `push_to_hub` (a temporary folder is used).
        stage: the run's stage to export (None: its last).
        adapter_only: export the adapter (with tokenizer and card) instead of a merged model.
        dtype: the merged model's dtype (None: the base model's own).
        max_shard_size: the largest safetensors shard of a merged model, e.g. `5GB`.
        model: the base model to use instead of the one the run or adapter names.
        push_to_hub: a Hub repo id to upload the export to.
        private: create that repo private.
        overwrite: replace an existing, non-empty `output_dir`.
    """

    source: str
    output_dir: str | None = None
    stage: str | None = None
    adapter_only: bool = False
    dtype: str | None = None
    max_shard_size: str = "5GB"
    model: str | None = None
    push_to_hub: str | None = None
    private: bool = False
    overwrite: bool = False


@dataclass(frozen=True)
class ExportResult:
    """What was exported: the artifact (`adapter` or `merged`), the stage (None outside a run), the folder (None
    when it was only uploaded) and the upload's URL (None when not uploaded)."""

    artifact: str
    stage: str | None
    folder: Path | None
    url: str | None


def check_request(request: ExportRequest) -> None:
    """Refuse a contradictory or malformed request before any model is loaded."""
    from transformers.utils.hub import convert_file_size_to_int

    if request.output_dir is None and request.push_to_hub is None:
        raise AlignError(Problem("--output-dir", "give a folder to write the export to, or --push-to-hub REPO"))
    if request.private and request.push_to_hub is None:
        raise AlignError(Problem("--private", "makes the Hub repo private: it needs --push-to-hub REPO"))
    if request.adapter_only and request.dtype is not None:
        raise AlignError(Problem("--dtype", "sets the merged model's dtype; an --adapter-only export keeps its own"))
    if request.push_to_hub is not None:
        check_repo_id(request.push_to_hub)
    try:
        convert_file_size_to_int(request.max_shard_size)
    except ValueError:
        raise AlignError(Problem("--max-shard-size", f"{request.max_shard_size!r}: give e.g. 5GB or 500MB")) from None
    target = Path(request.output_dir).expanduser() if request.output_dir else None
    if target is not None and target.exists() and not request.overwrite:
        if not target.is_dir() or any(target.iterdir()):
            raise AlignError(Problem(request.output_dir, "exists and is not empty; choose another or pass --overwrite"))


def _write_tokenizer(source: ExportSource, folder: Path) -> None:
    """The tokenizer saved with the adapter (chat template included), else the base model's."""
    from transformers import AutoTokenizer

    from align.models import load_tokenizer

    if has_tokenizer(source.adapter_dir):
        tokenizer = AutoTokenizer.from_pretrained(source.adapter_dir, trust_remote_code=source.trust_remote_code)
    else:
        tokenizer = load_tokenizer(source.base_model, source.trust_remote_code)
    tokenizer.save_pretrained(folder)


def _write_artifact(request: ExportRequest, source: ExportSource, folder: Path, load_from: str) -> str:
    """Write the export into `folder`; return its artifact kind."""
    if request.adapter_only:
        for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
            shutil.copy2(source.adapter_dir / name, folder / name)
        set_base_model(folder, source.base_name)
        artifact = ADAPTER
    else:
        from align.export.merge import base_dtype, merge_to_folder

        merge_to_folder(source, request.dtype or base_dtype(source), folder, request.max_shard_size)
        artifact = MERGED
    _write_tokenizer(source, folder)
    atomic_write_text(folder / CARD, render_card(source.facts, artifact, source.base_name, load_from))
    return artifact


def _publish(staging: Path, target: Path) -> None:
    """Rename the finished `staging` folder to `target`, replacing what was there (checked by `check_request`)."""
    for path in staging.iterdir():  # transformers writes weights 0600; an export is meant to be read by others
        path.chmod(0o644)
    if target.exists():
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    staging.rename(target)


def run_export(request: ExportRequest) -> ExportResult:
    """Export as `request` says; see the module docstring."""
    check_request(request)
    source = find_source(request.source, request.stage, request.model)
    target = Path(request.output_dir).expanduser().resolve() if request.output_dir else None
    load_from = request.push_to_hub or str(request.output_dir)
    parent = target.parent if target else None
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would make the published folder unreadable to others
    try:
        artifact = _write_artifact(request, source, staging, load_from)
        if target is not None:  # published before the upload, so a failed upload leaves the export to retry with
            _publish(staging, target)
        url = None
        if request.push_to_hub:
            stage = f"stage {source.facts.stage} of {source.facts.recipe}" if source.facts else "an adapter"
            message = f"align export: {artifact} from {stage}"
            url = push_folder(target or staging, request.push_to_hub, request.private, message)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(artifact, source.facts.stage if source.facts else None, target, url)

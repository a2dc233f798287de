"""The model cache: one preparation however many processes ask, and any folder align did not finish is rebuilt."""

import logging
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from align.errors import AlignError
from align.models import cache
from align.models.cache import MARKER, incomplete_reason, prepare_cached

REPO = Path(__file__).resolve().parents[2]
NAME = "fake-model"


def fake_preparer(target: Path) -> None:
    """A model folder in miniature; appends this process's id to $FAKE_PREP_LOG, sleeps $FAKE_PREP_SECONDS."""
    (target / "config.json").write_text('{"model_type": "llama"}')
    (target / "model.safetensors").write_bytes(b"w" * 64)
    (target / "tokenizer.json").write_text("{}")
    with open(os.environ["FAKE_PREP_LOG"], "a") as log:
        log.write(f"{os.getpid()}\n")
    time.sleep(float(os.environ.get("FAKE_PREP_SECONDS", "0")))


def tokenizer_only_preparer(target: Path) -> None:
    """What a preparer wrote on rank 1 once a process group existed: transformers saved the tokenizer only."""
    (target / "tokenizer.json").write_text("{}")


def failing_preparer(target: Path) -> None:
    raise AlignError("model 'fake-model' needs the package fake-weights: run `pip install fake-weights`")


@pytest.fixture
def prep_log(tmp_path, monkeypatch) -> Path:
    log = tmp_path / "preparations.log"
    monkeypatch.setenv("FAKE_PREP_LOG", str(log))
    return log


def _preparations(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name not in (NAME, f".{NAME}.lock"))


def test_a_complete_folder_is_prepared_once_and_reused(tmp_path, prep_log, caplog):
    """The second call finds the marker and runs nothing; the marker lists every file with its size. If this fails,
    every run re-prepares the model (40 s for SmolLM2) or the marker does not describe the folder."""
    root = tmp_path / "models"
    with caplog.at_level(logging.WARNING):
        first = prepare_cached(NAME, fake_preparer, root)
        assert prepare_cached(NAME, fake_preparer, root) == first
    assert len(_preparations(prep_log)) == 1 and not caplog.records
    assert incomplete_reason(first, NAME, fake_preparer) is None
    assert (first / MARKER).is_file() and _leftovers(root) == []


def _tokenizer_only(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "tokenizer.json").write_text("{}")


def _config_without_weights(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "tokenizer.json").write_text("{}")


def _foreign_complete_looking(folder: Path) -> None:
    folder.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (folder / name).write_text("{}")


def _marker_of_another_model(folder: Path) -> None:
    _foreign_complete_looking(folder)
    (folder / MARKER).write_text('{"name": "tiny-llama", "preparer": "x.y", "files": {}}')


NO_MARKER = "no .align-complete marker: a preparation cut off, or a folder align did not write"


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (_tokenizer_only, NO_MARKER),
        (_config_without_weights, NO_MARKER),
        (_foreign_complete_looking, NO_MARKER),
        (_marker_of_another_model, "marker of 'tiny-llama' by 'x.y'"),
    ],
    ids=["tokenizer-only", "config-without-weights", "foreign-folder", "marker-of-another-model"],
)
def test_an_unfinished_or_foreign_folder_is_rebuilt_with_one_line(tmp_path, prep_log, caplog, state, reason):
    """A folder left by the old cold-cache race (tokenizer only), a half-written one (config, no weights), one copied
    in by hand (complete-looking, no marker) or another model's: rebuilt, with one warning line naming the folder and
    why. If this fails, the cache crashes every later run (`Directory not empty`) or loads a wrong model."""
    root = tmp_path / "models"
    state(root / NAME)
    with caplog.at_level(logging.WARNING):
        folder = prepare_cached(NAME, fake_preparer, root)
    assert [r.getMessage() for r in caplog.records] == [
        f"model cache: {folder} is incomplete ({reason}); rebuilding it"
    ]
    assert len(_preparations(prep_log)) == 1 and incomplete_reason(folder, NAME, fake_preparer) is None
    assert (folder / "model.safetensors").read_bytes() == b"w" * 64 and _leftovers(root) == []


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_a_marked_folder_missing_or_with_a_cut_weights_file_is_rebuilt(tmp_path, prep_log, caplog, damage):
    """The marker is not trusted blindly: a listed file deleted or cut short makes the folder incomplete."""
    root = tmp_path / "models"
    weights = prepare_cached(NAME, fake_preparer, root) / "model.safetensors"
    weights.unlink() if damage == "delete" else weights.write_bytes(b"w" * 10)
    expected = "model.safetensors is missing" if damage == "delete" else "model.safetensors has 10 bytes"
    assert expected in incomplete_reason(weights.parent, NAME, fake_preparer)
    with caplog.at_level(logging.WARNING):
        prepare_cached(NAME, fake_preparer, root)
    assert len(caplog.records) == 1 and expected in caplog.records[0].getMessage()
    assert weights.read_bytes() == b"w" * 64 and len(_preparations(prep_log)) == 2


def test_a_link_in_the_cache_is_replaced_without_touching_its_target(tmp_path, prep_log):
    """A link someone put at models/<name> pointing at their own folder: the link goes, their folder stays."""
    root, theirs = tmp_path / "models", tmp_path / "their-model"
    _foreign_complete_looking(theirs)
    root.mkdir()
    (root / NAME).symlink_to(theirs)
    folder = prepare_cached(NAME, fake_preparer, root)
    assert not folder.is_symlink() and incomplete_reason(folder, NAME, fake_preparer) is None
    assert sorted(p.name for p in theirs.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]


def _prepare_in_child(root: str, start, results) -> None:
    start.wait()
    results.put(str(prepare_cached(NAME, fake_preparer, Path(root))))


def test_two_processes_at_once_prepare_one_copy(tmp_path, prep_log, monkeypatch):
    """Two processes released together on an empty cache, the preparation taking 0.5 s: one prepares, the other
    waits for the lock and reuses its folder; no staging folder is left. If this fails, ranks race as they did
    (`OSError: Directory not empty`) or prepare the model twice."""
    monkeypatch.setenv("FAKE_PREP_SECONDS", "0.5")
    root = tmp_path / "models"
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_prepare_in_child, args=(str(root), start, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert {results.get(timeout=5), results.get(timeout=5)} == {str(root / NAME)}
    assert len(_preparations(prep_log)) == 1
    assert incomplete_reason(root / NAME, NAME, fake_preparer) is None and _leftovers(root) == []


def test_with_a_process_group_the_preparer_runs_in_a_fresh_process(tmp_path, prep_log, monkeypatch):
    """With a torch process group, transformers saves weights on rank 0 only, so the preparer runs in a new Python
    process (another pid), and an AlignError there is the same one-line error here. If this fails, a rank other than
    0 publishes a tokenizer-only folder, or a preparer's user error becomes a traceback."""
    monkeypatch.chdir(REPO)  # the fresh process imports this module as tests.models.test_cache
    monkeypatch.setattr(cache, "_process_group_active", lambda: True)
    folder = prepare_cached(NAME, fake_preparer, tmp_path / "models")
    assert incomplete_reason(folder, NAME, fake_preparer) is None
    assert _preparations(prep_log) != [str(os.getpid())] and len(_preparations(prep_log)) == 1
    with pytest.raises(AlignError, match=r"needs the package fake-weights: run `pip install fake-weights`$"):
        prepare_cached("other-model", failing_preparer, tmp_path / "models")
    assert _leftovers(tmp_path / "models") == [".other-model.lock"]


def test_a_preparer_that_writes_no_weights_publishes_nothing(tmp_path):
    """A preparation missing the config or weights (as rank 1's did under the race) is an error and leaves no folder
    in the cache. If this fails, a tokenizer-only folder is published as the model."""
    root = tmp_path / "models"
    with pytest.raises(RuntimeError, match=r"wrote no config or weights file \(wrote: tokenizer.json\)"):
        prepare_cached(NAME, tokenizer_only_preparer, root)
    assert not (root / NAME).exists() and _leftovers(root) == []


def test_a_staging_folder_left_by_a_killed_preparation_is_removed(tmp_path, prep_log):
    """A preparation killed mid-way leaves its staging folder; the next one (holding the lock, so no other is
    running) removes it, and leaves the staging of a model whose name starts the same alone. If this fails, every
    killed preparation leaves up to a model's size of garbage in the cache, or one preparation deletes another's."""
    root = tmp_path / "models"
    for leftover in (f".{NAME}.staging-abc123", f".{NAME}-39m.staging-def456"):
        (root / leftover).mkdir(parents=True)
        (root / leftover / "model.safetensors").write_bytes(b"half")
    prepare_cached(NAME, fake_preparer, root)
    assert _leftovers(root) == [f".{NAME}-39m.staging-def456"]


def test_without_file_locks_it_warns_and_still_publishes_a_complete_folder(tmp_path, prep_log, caplog, monkeypatch):
    """A file system that refuses flock (ENOLCK): one warning, the model is still prepared and published whole, and
    staging folders are left alone (without the lock one may be another process's, still being written). If this
    fails, a cache on such a file system cannot be used, or one process deletes another's preparation."""
    import errno

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(cache.fcntl, "flock", no_locks)
    root = tmp_path / "models"
    (root / f".{NAME}.staging-other").mkdir(parents=True)
    with caplog.at_level(logging.WARNING):
        folder = prepare_cached(NAME, fake_preparer, root)
    assert incomplete_reason(folder, NAME, fake_preparer) is None
    assert [r.getMessage() for r in caplog.records] == [
        f"model cache: cannot lock {root / f'.{NAME}.lock'} ([Errno 37] No locks available); preparing {NAME} "
        "without a lock"
    ]
    assert _leftovers(root) == [f".{NAME}.staging-other"]

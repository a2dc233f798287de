"""The private trl/transformers names align relies on are listed in one place and checked at import."""

import pytest

from align.errors import AlignError
from align.training import private_api


def test_every_listed_private_name_exists_in_the_installed_versions():
    """Every listed name resolves in the versions installed here (those CI runs): if this fails, an upgrade removed
    a name align relies on and training would break mid-run instead of at import."""
    private_api.check_private_names()
    for module, path, _ in private_api.PRIVATE_NAMES:
        assert private_api._resolve(module, path) is not None, path


def test_a_missing_private_name_stops_with_one_line_naming_the_tested_versions(monkeypatch):
    """A release that drops a private name gets one line: which package and name, and the versions CI passed."""
    names = (*private_api.PRIVATE_NAMES, ("trl.trainer.dpo_trainer", "DPOTrainer._gone_in_a_new_release", "a test"))
    monkeypatch.setattr(private_api, "PRIVATE_NAMES", names)
    with pytest.raises(AlignError) as raised:
        private_api.check_private_names()
    message = str(raised.value)
    assert "\n" not in message
    assert "lacks trl.trainer.dpo_trainer.DPOTrainer._gone_in_a_new_release" in message
    assert "pip install 'trl==1.16.0'" in message and "transformers 5.25.0" in message


def test_setup_cfg_upper_bounds_admit_only_the_tested_minor_releases():
    """setup.cfg's upper bounds are the newest versions CI ran (private names may change in any release)."""
    import configparser

    from packaging.requirements import Requirement
    from packaging.version import Version

    from tests.conftest import REPO

    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    requirements = {
        Requirement(line).name: Requirement(line)
        for line in config["options"]["install_requires"].split("\n")
        if line.strip()
    }
    for package, tested in private_api.TESTED_VERSIONS.items():
        specifier = requirements[package].specifier
        major, minor, _ = Version(tested).release
        assert Version(tested) in specifier, package
        assert Version(f"{major}.{minor + 1}.0") not in specifier, f"{package} admits untested {major}.{minor + 1}"


def test_a_trainer_without_trls_private_attributes_is_refused(tiny_trainer, monkeypatch):
    """If trl stops setting an attribute align reads (its metrics store), construction stops with one line."""
    monkeypatch.setattr(private_api, "PRIVATE_INSTANCE_ATTRIBUTES", ("_metrics", "_not_set_by_trl"))
    with pytest.raises(AlignError, match="no longer sets _not_set_by_trl"):
        tiny_trainer(4, {"per_device_train_batch_size": 2, "max_length": 128})


def _align_sources():
    """(path, parsed module) of every align source file but private_api.py."""
    import ast

    from tests.conftest import REPO

    for path in sorted((REPO / "align").rglob("*.py")):
        if path.name != "private_api.py":
            yield path.relative_to(REPO), ast.parse(path.read_text())


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_trl_or_transformers_attribute_is_used_outside_private_api():
    """Outside private_api.py, align reads or writes no listed instance or class attribute of trl/transformers
    (`_metrics`, `_attn_implementation`, ...), and reads no private attribute it does not define itself (a method,
    a class, an attribute it assigns). If this fails, code reaches into trl or transformers internals without the
    import-time check and the one listed place that make an upgrade fail loudly."""
    import ast

    listed = (
        set(private_api.PRIVATE_INSTANCE_ATTRIBUTES)
        | set(private_api.SFT_PRIVATE_INSTANCE_ATTRIBUTES)
        | {
            path.split(".")[-1]
            for _, path, _ in private_api.PRIVATE_NAMES
            if "." in path and not path.startswith(("DPOTrainer.", "SFTTrainer."))
        }
    )
    defined, uses = set(), []
    for path, tree in _align_sources():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, ast.Attribute):
                uses.append((node.attr, isinstance(node.ctx, ast.Store), f"{path}:{node.lineno}"))
                if isinstance(node.ctx, ast.Store) and node.attr not in listed:
                    defined.add(node.attr)
    offenders = [
        f"{where}: {name}"
        for name, store, where in uses
        if name in listed or (_is_private(name) and not store and name not in defined)
    ]
    assert offenders == []


def test_every_private_trainer_method_align_overrides_is_listed():
    """`ContrastiveTrainer` overrides private methods of trl's `DPOTrainer` (and transformers' `Trainer`); each must
    be in PRIVATE_NAMES. If this fails, a trl release that renames one would silently stop calling align's version
    (e.g. the reference precompute would run on unprepared models) instead of failing at import."""
    from trl import DPOTrainer

    from align.training.trainer import ContrastiveTrainer

    listed = {path.split(".")[-1] for _, path, _ in private_api.PRIVATE_NAMES if path.startswith("DPOTrainer.")}
    overridden = {name for name in vars(ContrastiveTrainer) if _is_private(name) and hasattr(DPOTrainer, name)}
    assert overridden and overridden <= listed, sorted(overridden - listed)


def test_every_private_sft_trainer_method_align_overrides_is_listed():
    """`FastSftTrainer` overrides private methods of trl's `SFTTrainer` (and transformers' `Trainer`); each must be in
    PRIVATE_NAMES. If this fails, a release that renames one would silently stop calling align's version (a packed
    batch's tokens would go uncounted and the loss be scaled wrongly) instead of failing at import."""
    from trl import SFTTrainer

    from align.training.sft_trainer import FastSftTrainer

    listed = {path.split(".")[-1] for _, path, _ in private_api.PRIVATE_NAMES if path.startswith("SFTTrainer.")}
    overridden = {name for name in vars(FastSftTrainer) if _is_private(name) and hasattr(SFTTrainer, name)}
    assert overridden and overridden <= listed, sorted(overridden - listed)


def test_listed_names_are_taken_from_private_api_only():
    """No align module imports a listed name straight from trl or transformers: it takes it from private_api, which
    checked it first. If this fails, a missing name would surface as an ImportError in some other module instead of
    the one-line message naming the tested versions."""
    import ast

    listed = {(module, path.split(".")[0]) for module, path, _ in private_api.PRIVATE_NAMES}
    direct = [
        f"{path}: {node.module}.{alias.name}"
        for path, tree in _align_sources()
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if (node.module, alias.name) in listed
    ]
    assert direct == []


def test_instance_attribute_accessors_read_what_trl_set(tiny_trainer):
    """The accessors read the trainer trl built: its metrics store per mode, tokenizer, kept columns and precompute
    flag. If this fails, an accessor reads a stale or wrong attribute and metrics or tokenisation go astray."""
    trainer = tiny_trainer(4, {"per_device_train_batch_size": 2, "max_length": 128})
    private_api.metrics_store(trainer, "train")["probe"].append(1.0)
    assert trainer._metrics["train"]["probe"] == [1.0]
    assert private_api.trainer_tokenizer(trainer).eos_token == trainer.processing_class.eos_token
    assert private_api.precomputes_reference(trainer) is False

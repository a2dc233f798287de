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

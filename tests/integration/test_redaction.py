"""Secrets planted in the environment (and pulled into a recipe with `${env:...}`) never reach any file a run
writes — outputs, checkpoints, the wandb run folder — nor its printed output."""

import os
from pathlib import Path

import pytest

from tests.conftest import align_train_cli

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
SECRETS = {
    "WANDB_API_KEY": "wandb-fake-key-0123456789abcdef0123456789abcdef01234567",
    "HF_TOKEN": "hf_FakeTokenForAlignTests0123456789",
    "MY_SERVICE_API_KEY": "svc-secret-value-42-do-not-leak",
}


def test_planted_secrets_appear_in_no_output_file(tiny_model_dir, tmp_path, write, monkeypatch):
    """The recipe interpolates a secret into its name (so it flows into the run name, summary, resolved recipe and
    tracker config); wandb runs offline with a fake API key in the environment. Every byte under OUTPUT and the
    process output is searched for every secret. If this fails, a key would be shared with anyone who sees the run."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    for name, folder in (
        ("WANDB_DATA_DIR", "data"),
        ("WANDB_CACHE_DIR", "cache"),
        ("WANDB_CONFIG_DIR", "config"),
        ("WANDB_ARTIFACT_DIR", "artifacts"),
    ):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / folder))
    recipe = write(
        "r.yaml",
        (REPO / "recipes" / "tiny" / "sft_then_dpo.yaml")
        .read_text()
        .replace("name: tiny-sft-then-dpo", "name: tiny-${env:MY_SERVICE_API_KEY}")
        .replace("../../data", str(REPO / "data")),
    )
    out = tmp_path / "out"
    result = align_train_cli(
        recipe,
        out,
        f"model.name={tiny_model_dir}",
        "report_to=wandb",
        "training.save_strategy=steps",
        "training.save_steps=3",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "training_args.bin" for p in files) and any(p.suffix == ".wandb" for p in files)
    for name, value in SECRETS.items():
        leaks = [str(p) for p in files if value.encode() in p.read_bytes()]
        assert not leaks, (name, leaks)
        assert value not in result.stdout + result.stderr, name
    assert "tiny-***" in (out / "summary.json").read_text()
    assert os.environ["MY_SERVICE_API_KEY"] == SECRETS["MY_SERVICE_API_KEY"]

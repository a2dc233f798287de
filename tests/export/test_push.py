"""`--push-to-hub` without a network: huggingface_hub's HfApi calls are replaced and their arguments checked."""

from pathlib import Path
from types import SimpleNamespace

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import OfflineModeIsEnabled

from align.errors import AlignError
from align.export.build import ExportRequest, run_export
from align.export.push import push_folder


class FakeHub:
    """Records create_repo, repo_info and upload_folder calls, with the files the upload was handed."""

    def __init__(self, existing_public: bool = False):
        self.calls, self.existing_public = [], existing_public

    def install(self, monkeypatch):
        def create_repo(api, repo_id, **kwargs):
            self.calls.append(("create_repo", repo_id, kwargs))
            return SimpleNamespace(repo_id=repo_id, __str__=lambda: f"https://huggingface.co/{repo_id}")

        def repo_info(api, repo_id, **kwargs):
            self.calls.append(("repo_info", repo_id, kwargs))
            return SimpleNamespace(private=not self.existing_public)

        def upload_folder(api, *, repo_id, folder_path, **kwargs):
            files = sorted(p.name for p in Path(folder_path).iterdir())
            readme = (Path(folder_path) / "README.md").read_text()
            self.calls.append(("upload_folder", repo_id, {**kwargs, "files": files, "readme": readme}))
            return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/abc")

        for name, fn in (("create_repo", create_repo), ("repo_info", repo_info), ("upload_folder", upload_folder)):
            monkeypatch.setattr(HfApi, name, fn)
        return self


def test_adapter_push_uploads_the_export_privately(random_adapter, tiny_model_dir, tmp_path, monkeypatch):
    """`--push-to-hub me/tiny --private --adapter-only`: the repo is created private, the upload is handed the
    adapter, its config, tokenizer and the card whose example loads from the repo id. If this fails, the wrong
    files, repo or visibility reach the Hub."""
    hub = FakeHub().install(monkeypatch)
    request = ExportRequest(
        source=str(random_adapter), adapter_only=True, model=str(tiny_model_dir), push_to_hub="me/tiny", private=True
    )
    result = run_export(request)
    assert result.url == "https://huggingface.co/me/tiny/commit/abc" and result.folder is None
    (create, info, upload) = hub.calls
    assert create == ("create_repo", "me/tiny", {"private": True, "repo_type": "model", "exist_ok": True})
    assert info[:2] == ("repo_info", "me/tiny") and upload[:2] == ("upload_folder", "me/tiny")
    files = upload[2]["files"]
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "tokenizer.json"} <= set(files)
    assert 'from_pretrained("me/tiny")' in upload[2]["readme"] and upload[2]["repo_type"] == "model"
    assert not list(tmp_path.iterdir()), "a push without --output-dir leaves no folder behind"


def test_public_push_and_output_folder(random_adapter, tmp_path, monkeypatch):
    """Without --private the repo is created public and not re-checked; with --output-dir the folder stays and is
    what was uploaded. If this fails, the local export and the Hub copy can differ."""
    hub = FakeHub().install(monkeypatch)
    out = tmp_path / "export"
    request = ExportRequest(source=str(random_adapter), output_dir=str(out), adapter_only=True, push_to_hub="me/x")
    run_export(request)
    assert [call[0] for call in hub.calls] == ["create_repo", "upload_folder"]
    assert hub.calls[0][2]["private"] is False
    assert hub.calls[1][2]["files"] == sorted(p.name for p in out.iterdir())


def test_private_asked_of_an_existing_public_repo_is_refused_before_upload(tmp_path, monkeypatch):
    """exist_ok keeps an existing repo as it is: a public one would receive a --private export. Refused, nothing
    uploaded. If this fails, a model meant to be private is published."""
    hub = FakeHub(existing_public=True).install(monkeypatch)
    (tmp_path / "README.md").write_text("card")
    with pytest.raises(AlignError, match="exists and is public"):
        push_folder(tmp_path, "me/public", private=True, commit_message="m")
    assert "upload_folder" not in [call[0] for call in hub.calls]


def test_hub_failure_is_one_line(tmp_path, monkeypatch):
    """Offline mode, a missing token or a refused request become one line naming the repo and how to log in. If
    this fails, the user gets a huggingface_hub traceback."""

    def offline(api, repo_id, **kwargs):
        raise OfflineModeIsEnabled("Cannot reach https://huggingface.co: offline mode is enabled.")

    monkeypatch.setattr(HfApi, "create_repo", offline)
    with pytest.raises(AlignError) as info:
        push_folder(tmp_path, "me/x", private=False, commit_message="m")
    message = str(info.value)
    assert message.startswith("--push-to-hub: me/x: the upload failed (Cannot reach") and "hf auth login" in message
    assert "\n" not in message

"""Upload an exported folder (merged model or adapter, with its card) to a Hugging Face Hub model repo through
`huggingface_hub`: the repo is created if needed, then the folder is uploaded in one commit."""

from __future__ import annotations

import logging
from pathlib import Path

from align.errors import AlignError, Problem

logger = logging.getLogger(__name__)
_LOGIN = "log in with `hf auth login` or set HF_TOKEN, and check that the repo id is yours to write"


def check_repo_id(repo_id: str) -> None:
    """`AlignError` unless `repo_id` is a valid Hub model repo id (`name` or `namespace/name`)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        first = str(exc).splitlines()[0]
        raise AlignError(Problem("--push-to-hub", f"{repo_id!r} is not a Hub repo id: {first}")) from None


def _failed(repo_id: str, exc: Exception) -> AlignError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return AlignError(Problem("--push-to-hub", f"{repo_id}: the upload failed ({first}); {_LOGIN}"))


def push_folder(folder: Path, repo_id: str, private: bool, commit_message: str) -> str:
    """Create the model repo `repo_id` (private if `private`; an existing one is kept) and upload every file of
    `folder` to it in one commit; return the commit's URL. A repo that exists and is public is refused when
    `private` is asked for, before anything is uploaded."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HTTPError

    api = HfApi()
    try:
        url = api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True)
        if private and not api.repo_info(url.repo_id, repo_type="model").private:
            message = f"{url.repo_id} exists and is public, so --private cannot hold; choose another repo id"
            raise AlignError(Problem("--push-to-hub", message + " or make it private on the Hub first"))
        commit = api.upload_folder(
            repo_id=url.repo_id, folder_path=str(folder), repo_type="model", commit_message=commit_message
        )
    except (OSError, HTTPError) as exc:  # no token, offline mode, refused, unreachable
        raise _failed(repo_id, exc) from None
    logger.info("uploaded %s to %s", folder, url.repo_id)
    return str(getattr(commit, "commit_url", None) or url)

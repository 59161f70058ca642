"""Bringing one Hub repository to hold exactly a bundle of files, in at most one commit.

What the repository holds is read from its file listing (git blob ids, and the sha256 of files
stored in LFS) and compared with what would be uploaded: identical content is not sent again,
and when nothing differs no commit is made at all. Otherwise the changed files, and the
deletion of plots an earlier deployment left that this one does not have, go into one commit
whose parent is the commit just read (a concurrent change makes it fail rather than mix).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from mltrainer.tools.deploy.bundle import BundleFile
from mltrainer.tools.deploy.hub import hub_error
from mltrainer.tools.deploy.models import DeployedFile

if TYPE_CHECKING:
    from huggingface_hub import CommitOperationAdd, HfApi

RepoType = Literal["model", "space"]
Progress = Callable[[float, str], None]  # (fraction of this push done, message)


class RemoteFile(BaseModel):
    blob_id: str
    sha256: str | None = None  # set for files stored in LFS


class RepoState(BaseModel):
    url: str
    sha: str | None
    private: bool | None
    files: dict[str, RemoteFile]


class PushResult(BaseModel):
    url: str
    commit_sha: str | None
    committed: bool
    files: list[DeployedFile]
    private: bool | None


def same_content(local: BundleFile, remote: RemoteFile | None) -> bool:
    if remote is None:
        return False
    if remote.sha256 is not None:
        return remote.sha256 == local.sha256
    return remote.blob_id == local.git_blob_id


def stale(path: str, keep: set[str]) -> bool:
    """A file an earlier deployment uploaded that this one does not: a plot no longer drawn."""
    return "/" not in path and path.endswith(".png") and path not in keep


def ensure_repo(
    api: HfApi, repo_id: str, repo_type: RepoType, *, private: bool, space_sdk: str | None
) -> str:
    try:
        url = api.create_repo(
            repo_id, repo_type=repo_type, private=private, exist_ok=True, space_sdk=space_sdk
        )
    except Exception as exc:
        raise hub_error(exc, f"creating the {repo_type} repository {repo_id}") from None
    return str(url)


def read_state(api: HfApi, repo_id: str, repo_type: RepoType, url: str) -> RepoState:
    from huggingface_hub.hf_api import RepoFile

    try:
        info = api.repo_info(repo_id, repo_type=repo_type)
        listing = api.list_repo_tree(repo_id, repo_type=repo_type, recursive=True)
        files = {
            entry.path: RemoteFile(
                blob_id=entry.blob_id, sha256=entry.lfs.sha256 if entry.lfs else None
            )
            for entry in listing
            if isinstance(entry, RepoFile)  # files, not folders
        }
    except Exception as exc:
        raise hub_error(exc, f"reading the {repo_type} repository {repo_id}") from None
    return RepoState(url=url, sha=info.sha, private=info.private, files=files)


def push(
    api: HfApi,
    repo_id: str,
    repo_type: RepoType,
    files: list[BundleFile],
    *,
    private: bool,
    message: str,
    progress: Progress,
    space_sdk: str | None = None,
) -> PushResult:
    """Create or reuse ``repo_id`` and make it hold ``files``: one commit, or none if it does."""
    from huggingface_hub import CommitOperationDelete

    progress(0.0, f"Preparing {repo_type} repository {repo_id}.")
    url = ensure_repo(api, repo_id, repo_type, private=private, space_sdk=space_sdk)
    state = read_state(api, repo_id, repo_type, url)
    changed = [f for f in files if not same_content(f, state.files.get(f.path))]
    keep = {f.path for f in files}
    removed = sorted(path for path in state.files if stale(path, keep))
    changed_paths = {f.path for f in changed}
    described = [f.describe(changed=f.path in changed_paths) for f in files]
    if not changed and not removed:
        progress(1.0, f"{repo_id} already holds these files: no new commit.")
        return PushResult(
            url=url, commit_sha=state.sha, committed=False, files=described, private=state.private
        )
    operations: list[CommitOperationAdd | CommitOperationDelete] = []
    operations += upload(api, repo_id, repo_type, changed, progress)
    operations += [CommitOperationDelete(path_in_repo=path) for path in removed]
    try:
        commit = api.create_commit(
            repo_id,
            operations,
            commit_message=message,
            repo_type=repo_type,
            parent_commit=state.sha,
        )
    except Exception as exc:
        raise hub_error(exc, f"committing to {repo_id}") from None
    progress(1.0, f"Committed {len(operations)} change(s) to {repo_id}.")
    return PushResult(
        url=url, commit_sha=commit.oid, committed=True, files=described, private=state.private
    )


def upload(
    api: HfApi, repo_id: str, repo_type: RepoType, files: list[BundleFile], progress: Progress
) -> list[CommitOperationAdd]:
    """Send each file ahead of the commit, reporting after each; the commit then references them.

    This is huggingface_hub's own pattern for large commits (``preupload_lfs_files`` one file at
    a time): the content goes up while the caller sees progress, and still lands in one commit.
    """
    from huggingface_hub import CommitOperationAdd

    total = sum(len(f.data) for f in files) or 1
    sent = 0
    additions = []
    for file in files:
        addition = CommitOperationAdd(path_in_repo=file.path, path_or_fileobj=file.data)
        try:
            api.preupload_lfs_files(repo_id, additions=[addition], repo_type=repo_type)
        except Exception as exc:
            raise hub_error(exc, f"uploading {file.path} to {repo_id}") from None
        sent += len(file.data)
        progress(
            0.9 * sent / total,
            f"Sent {file.path} to {repo_id} ({sent / 1e6:.1f} of {total / 1e6:.1f} MB).",
        )
        additions.append(addition)
    return additions

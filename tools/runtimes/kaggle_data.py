"""A job's data as a private Kaggle dataset: created once, versioned when it changes, and never
uploaded twice for the same content.

Each job has its own dataset (``mltrainer-data-<job id>``). Its content digest goes into the
description (first version) and the version notes (later ones), so a submission that is
retried after the upload finds the data already there and sends nothing. Files at the top of
the data folder are uploaded as they are; a sub-folder goes up as one zip, which Kaggle
unpacks into a folder of that name when it processes the version (as ``kaggle datasets create
--dir-mode zip`` does). After an upload we wait until Kaggle reports the version ready, so the
kernel never starts on a version still being processed.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import requests

from mltrainer.state.errors import DatasetError, PermissionDenied
from mltrainer.tools.datasets.kaggle_client import REQUEST_TIMEOUT
from mltrainer.tools.runtimes.base import TransientRemoteError
from mltrainer.tools.runtimes.kaggle_limits import dataset_slug, dataset_title
from mltrainer.tools.runtimes.kaggle_remote import Remote, translate

DIGEST_MARK = "mltrainer data sha256:"


def digest(folder: Path) -> str:
    """Of every file's path and content: the same data gives the same digest."""
    total = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        total.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1024 * 1024), b""):
                total.update(block)
        total.update(b"\0")
    return total.hexdigest()[:32]


def ensure(
    remote: Remote, owner: str, job_id: str, folder: Path, content: str, *, ready_timeout_s: float
) -> str:
    """``owner/slug`` of the job's private dataset holding ``folder`` (whose ``digest`` is
    ``content``), uploading a new dataset or a new version only when Kaggle does not hold
    that content yet."""
    slug = dataset_slug(job_id)
    mark = f"{DIGEST_MARK}{content} (job {job_id})"
    existing = _dataset(remote, owner, slug)
    if existing is None:
        _create(remote, owner, slug, job_id, folder, mark)
    elif not _holds(existing, mark):
        _new_version(remote, owner, slug, folder, mark)
    _wait_ready(remote, owner, slug, ready_timeout_s)
    return f"{owner}/{slug}"


def _dataset(remote: Remote, owner: str, slug: str) -> Any | None:
    from kagglesdk.datasets.types.dataset_api_service import ApiGetDatasetRequest

    request = ApiGetDatasetRequest()
    request.owner_slug, request.dataset_slug = owner, slug
    return remote.lookup(
        f"looking up the dataset {owner}/{slug}",
        lambda c: c.datasets.dataset_api_client.get_dataset(request),
    )


def _holds(dataset: Any, mark: str) -> bool:
    """Whether the newest version of ``dataset`` is the content ``mark`` names."""
    versions = sorted(dataset.versions or [], key=lambda v: v.version_number)
    if versions and versions[-1].version_number > 1:
        return mark in (versions[-1].version_notes or "")
    return mark in (dataset.description or "")


def _create(remote: Remote, owner: str, slug: str, job_id: str, folder: Path, mark: str) -> None:
    from kagglesdk.datasets.types.dataset_api_service import ApiCreateDatasetRequest

    request = ApiCreateDatasetRequest()
    request.owner_slug, request.slug, request.title = owner, slug, dataset_title(job_id)
    request.license_name, request.is_private = "unknown", True
    request.description = f"Data of the mltrainer-mcp job {job_id}. {mark}"
    request.files = _upload(remote, folder)
    answer = remote.call(
        f"creating the private dataset {owner}/{slug}",
        lambda c: c.datasets.dataset_api_client.create_dataset(request),
    )
    _check_answer(answer, f"{owner}/{slug}", remote)


def _new_version(remote: Remote, owner: str, slug: str, folder: Path, mark: str) -> None:
    from kagglesdk.datasets.types.dataset_api_service import (
        ApiCreateDatasetVersionRequest,
        ApiCreateDatasetVersionRequestBody,
    )

    body = ApiCreateDatasetVersionRequestBody()
    body.version_notes, body.files = mark, _upload(remote, folder)
    request = ApiCreateDatasetVersionRequest()
    request.owner_slug, request.dataset_slug, request.body = owner, slug, body
    answer = remote.call(
        f"adding a version to the dataset {owner}/{slug}",
        lambda c: c.datasets.dataset_api_client.create_dataset_version(request),
    )
    _check_answer(answer, f"{owner}/{slug}", remote)


def _check_answer(answer: Any, ref: str, remote: Remote) -> None:
    """Kaggle answers some refusals with HTTP 200 and an error text: make them errors."""
    error = remote.masker.mask(answer.error or "")
    if (answer.status or "ok").lower() == "ok" and not error:
        return
    lowered = error.lower()
    if any(word in lowered for word in ("quota", "too large", "exceed", "limit")):
        raise DatasetError(
            f"Kaggle refused the data for {ref}: {error}",
            next_step="The private datasets of this account are full or the data is too large: "
            "delete old private datasets on kaggle.com, or sample the data, then submit again.",
        )
    raise PermissionDenied(
        f"Kaggle refused the dataset {ref}: {error or answer.status}",
        next_step="Check the dataset on kaggle.com with the account of secret://KAGGLE.",
    )


def _upload(remote: Remote, folder: Path) -> list[Any]:
    """One uploaded blob per top-level file, and one zip per top-level sub-folder."""
    from kagglesdk.datasets.types.dataset_api_service import ApiDatasetNewFile

    files = []
    with tempfile.TemporaryDirectory(prefix="mltrainer-kaggle-") as staging:
        for entry in sorted(folder.iterdir()):
            path = entry if entry.is_file() else _zip_folder(entry, Path(staging))
            new = ApiDatasetNewFile()
            new.token = _upload_blob(remote, path)
            files.append(new)
    return files


def _zip_folder(folder: Path, staging: Path) -> Path:
    target = staging / f"{folder.name}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return target


def _upload_blob(remote: Remote, path: Path) -> str:
    """Kaggle's two-step upload: ask for a signed URL, then PUT the bytes there (no
    credentials travel with the PUT). Returns the token the dataset request names it by."""
    from kagglesdk.blobs.types.blob_api_service import ApiBlobType, ApiStartBlobUploadRequest

    info = path.stat()
    request = ApiStartBlobUploadRequest()
    request.type, request.name = ApiBlobType.DATASET, path.name
    request.content_length, request.last_modified_epoch_seconds = info.st_size, int(info.st_mtime)
    start = remote.call(
        f"starting the upload of {path.name}",
        lambda c: c.blobs.blob_api_client.start_blob_upload(request),
    )
    try:
        with path.open("rb") as body:
            answer = requests.put(start.create_url, data=body, timeout=REQUEST_TIMEOUT)
        answer.raise_for_status()
    except requests.RequestException as exc:
        raise translate(exc, f"uploading {path.name}", remote.masker) from None
    return str(start.token)


def _wait_ready(remote: Remote, owner: str, slug: str, timeout_s: float) -> None:
    """Poll Kaggle until the newest version is processed (its status READY)."""
    from kagglesdk.datasets.types.dataset_api_service import ApiGetDatasetStatusRequest

    request = ApiGetDatasetStatusRequest()
    request.owner_slug, request.dataset_slug = owner, slug
    deadline, pause = time.monotonic() + timeout_s, 0.5
    while True:
        answer = remote.call(
            f"checking that the dataset {owner}/{slug} is ready",
            lambda c: c.datasets.dataset_api_client.get_dataset_status(request),
        )
        status = answer.status.name
        if status == "READY":
            return
        if status in ("FAILED", "DELETED"):
            raise DatasetError(
                f"Kaggle could not process the dataset {owner}/{slug} (status {status}).",
                next_step=f"Open https://www.kaggle.com/datasets/{owner}/{slug} to see why, fix "
                "the data, and submit again.",
            )
        if time.monotonic() > deadline:
            raise TransientRemoteError(
                f"Kaggle is still processing the dataset {owner}/{slug} after {timeout_s:g} s "
                f"(status {status}).",
                next_step="Submit again in a few minutes: the data is not uploaded again.",
            )
        time.sleep(pause)
        pause = min(pause * 2, 15.0)

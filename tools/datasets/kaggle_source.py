"""Kaggle datasets and competitions through the official client (``kaggle`` + ``kagglesdk``),
built by kaggle_client: quiet, with the credentials of the secret reference given to each call
and ``settings.kaggle_api_endpoint`` (a local fake in tests) instead of https://api.kaggle.com.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import stamina

from mltrainer.state.errors import MLTrainerError, NotFound, RemoteServiceError, SecretError
from mltrainer.state.settings import Settings
from mltrainer.tools.datasets import kaggle_client, transfer
from mltrainer.tools.datasets.kaggle_client import http_status, quiet_stdout
from mltrainer.tools.datasets.models import ProgressFn, SearchHit
from mltrainer.tools.datasets.refs import DatasetRef

T = TypeVar("T")
WEB = "https://www.kaggle.com"
RETRY_ATTEMPTS = 4
REQUEST_TIMEOUT = kaggle_client.REQUEST_TIMEOUT  # read at each call, so a test can shorten it


def make_api(settings: Settings, credentials: dict[str, str]) -> Any:
    return kaggle_client.make_api(settings, credentials, timeout=REQUEST_TIMEOUT)


# -- errors ---------------------------------------------------------------------------------
def _is_rate_limited(exc: Exception) -> bool:
    return http_status(exc) == 429


def translate(exc: Exception, ref: DatasetRef) -> MLTrainerError:
    """One place that turns a Kaggle failure into an error that says what to do next."""
    status = http_status(exc)
    what = ref.text
    if status == 401:
        return SecretError(
            f"Kaggle rejected the credentials while fetching {what} (HTTP 401).",
            next_step="Check secret://KAGGLE: set KAGGLE_USERNAME and KAGGLE_KEY (or "
            "KAGGLE_API_TOKEN) from https://www.kaggle.com/settings, then try again.",
        )
    if status == 403 and ref.source == "kaggle-competition":
        return RemoteServiceError(
            f"Kaggle refused access to the competition '{ref.name}'",
            status=403,
            next_step=f"Accept the competition rules at {WEB}/competitions/{ref.name}/rules "
            "while signed in to the Kaggle account of secret://KAGGLE, then try again.",
        )
    if status == 403:
        return RemoteServiceError(
            f"Kaggle refused access to {what}",
            status=403,
            next_step="The dataset is private or needs consent on kaggle.com; open it on "
            "kaggle.com with the account of secret://KAGGLE, or pick another dataset.",
        )
    if status == 404:
        return NotFound(
            f"Kaggle has no {'competition' if ref.source == 'kaggle-competition' else 'dataset'} "
            f"or file matching {what}.",
            next_step="Check the reference with search_datasets (source='kaggle').",
        )
    if status == 429:
        return RemoteServiceError(
            f"Kaggle kept rate-limiting requests for {what} after {RETRY_ATTEMPTS} attempts",
            status=429,
            next_step="Wait a few minutes and try again.",
        )
    if status is not None:
        return RemoteServiceError(
            f"Kaggle answered an error for {what}", status=status, next_step="Try again later."
        )
    return RemoteServiceError(
        f"Could not reach Kaggle for {what} ({type(exc).__name__}: {str(exc)[:200]}).",
        next_step="Check the network connection (or MLTRAINER_KAGGLE_API_ENDPOINT) and try again.",
    )


def call(ref: DatasetRef, fn: Callable[[], T]) -> T:
    """Run one Kaggle call: quiet, retried on 429 with backoff, errors translated."""

    @stamina.retry(on=_is_rate_limited, attempts=RETRY_ATTEMPTS, wait_initial=1.0, wait_max=20.0)
    def attempt() -> T:
        with quiet_stdout():
            return fn()

    try:
        return attempt()
    except MLTrainerError:
        raise
    except Exception as exc:
        raise translate(exc, ref) from None


# -- download -------------------------------------------------------------------------------
def download(
    ref: DatasetRef,
    selection: list[str],
    target: Path,
    *,
    settings: Settings,
    credentials: dict[str, str],
    progress: ProgressFn,
) -> dict[str, object]:
    """Download a dataset or competition (or the selected files) into ``target``."""
    api = make_api(settings, credentials)
    meta: dict[str, object] = {}
    if ref.source == "kaggle":
        info = call(ref, lambda: _get_dataset(api, ref))
        meta = {"title": info.title, "licence": info.license_name, "url": info.url}
        meta["version"] = ref.version or info.current_version_number
    else:
        meta = {"url": f"{WEB}/competitions/{ref.name}"}
    names: list[str | None] = list(selection) or [None]
    for index, name in enumerate(names):
        note = f"({index + 1}/{len(names)})"
        downloaded = _download_one(api, ref, name, target / ".download", settings, progress, note)
        _place(downloaded, target, name, settings)
    return meta


def _download_one(
    api: Any,
    ref: DatasetRef,
    name: str | None,
    staging: Path,
    settings: Settings,
    progress: ProgressFn,
    note: str,
) -> Path:
    response = call(ref, functools.partial(_open_download, api, ref, name))
    try:
        filename = transfer.filename_from(
            response.headers.get("Content-Disposition"), response.url, name or f"{ref.name}.zip"
        )
        length = response.headers.get("Content-Length")
        dest = staging / filename
        transfer.write_stream(
            response.iter_content(1024 * 1024),
            dest,
            what=name or ref.text,
            total=int(length) if length and length.isdigit() else None,
            cap=settings.max_download_bytes,
            progress=lambda done, total, msg: progress(done, total, f"{msg} {note}"),
        )
    except MLTrainerError:
        raise
    except Exception as exc:
        raise translate(exc, ref) from None
    finally:
        response.close()
    return dest


def _place(downloaded: Path, target: Path, name: str | None, settings: Settings) -> None:
    if name is None:
        transfer.place(downloaded, target, settings)  # the whole dataset: a zip
        return
    dest = target / name
    if downloaded.suffix.lower() == ".zip" and not name.lower().endswith(".zip"):
        transfer.place(downloaded, dest.parent, settings)  # Kaggle zips large single files
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    downloaded.replace(dest)


def _get_dataset(api: Any, ref: DatasetRef) -> Any:
    from kagglesdk.datasets.types.dataset_api_service import ApiGetDatasetRequest

    request = ApiGetDatasetRequest()
    request.owner_slug, request.dataset_slug = ref.owner, ref.name
    with api.build_kaggle_client() as client:
        return client.datasets.dataset_api_client.get_dataset(request)


def _open_download(api: Any, ref: DatasetRef, name: str | None) -> Any:
    """The streamed HTTP response for the whole dataset (a zip) or one file."""
    client = api.build_kaggle_client()
    if ref.source == "kaggle":
        from kagglesdk.datasets.types.dataset_api_service import ApiDownloadDatasetRequest

        request = ApiDownloadDatasetRequest()
        request.owner_slug, request.dataset_slug = ref.owner, ref.name
        request.dataset_version_number = ref.version
        if name:
            request.file_name = name
        return client.datasets.dataset_api_client.download_dataset(request)
    from kagglesdk.competitions.types.competition_api_service import (
        ApiDownloadDataFileRequest,
        ApiDownloadDataFilesRequest,
    )

    if name:
        one = ApiDownloadDataFileRequest()
        one.competition_name, one.file_name = ref.name, name
        return client.competitions.competition_api_client.download_data_file(one)
    every = ApiDownloadDataFilesRequest()
    every.competition_name = ref.name
    return client.competitions.competition_api_client.download_data_files(every)


# -- search ---------------------------------------------------------------------------------
def search(
    query: str, limit: int, *, settings: Settings, credentials: dict[str, str], detail: bool
) -> list[SearchHit]:
    api = make_api(settings, credentials)
    ref = DatasetRef(source="kaggle", text=f"search '{query}'")
    response = call(ref, lambda: api.dataset_list_with_response(search=query, page_size=limit))
    return [_hit(item, detail) for item in (response.datasets or [])[:limit] if item]


def _hit(item: Any, detail: bool) -> SearchHit:
    updated = item.last_updated.date().isoformat() if item.last_updated else None
    hit = SearchHit(
        ref=f"kaggle:{item.ref}",
        title=item.title,
        size=human_size(item.total_bytes),
        files=len(item.files) if item.files else None,
        licence=item.license_name,
        updated=updated,
        votes=item.vote_count,
        downloads=item.download_count,
        url=item.url or f"{WEB}/datasets/{item.ref}",
    )
    if detail:
        hit.description = (item.subtitle or item.description or "")[:500] or None
        hit.tags = [tag.name for tag in item.tags or [] if getattr(tag, "name", None)][:10] or None
    return hit


def human_size(size: int | None) -> str | None:
    if not size:
        return None
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return None

"""One front over every source: ``fetch(ref)`` downloads (or finds in the cache) a dataset."""

from __future__ import annotations

from pathlib import Path

from mltrainer.state.errors import DatasetError, PermissionDenied
from mltrainer.state.guard import PathPolicy, check_scheme
from mltrainer.state.models import DatasetRecord
from mltrainer.state.secrets import SecretVault, kaggle_api_url
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.datasets import cache, hf_source, kaggle_source, url_source
from mltrainer.tools.datasets.limits import Deadline, download_slot
from mltrainer.tools.datasets.models import DownloadResult, ProgressFn, no_progress
from mltrainer.tools.datasets.refs import DatasetRef, parse_ref, safe_member
from mltrainer.tools.datasets.transfer import Throttled

MAX_SELECTION = 1000


def fetch(
    ref: str,
    *,
    settings: Settings,
    store: Store,
    vault: SecretVault,
    files: list[str] | None = None,
    credentials: str | None = None,
    refresh: bool = False,
    progress: ProgressFn = no_progress,
) -> DownloadResult:
    """Download ``ref`` (see ``tools.datasets.refs`` for the grammar) into the cache.

    A second call with the same reference and selection is answered from the cache without
    any network access, unless ``refresh`` is set. A download takes one of the
    ``max_downloads`` slots and ends at ``download_timeout_s`` (see ``limits``).
    """
    parsed = parse_ref(ref)
    if parsed.dataset_id:
        return cache.to_result(cached_record(store, parsed.dataset_id), cached=True)
    if parsed.source == "sql":
        return _sql(parsed, files, settings, store, vault, refresh, progress)
    selection = sorted({safe_member(name) for name in files or []})
    if len(selection) > MAX_SELECTION:
        raise DatasetError(f"Too many files selected ({len(selection)}; at most {MAX_SELECTION}).")
    if parsed.source == "local":
        return _local(parsed, selection, settings, store)
    if parsed.url is not None:
        check_scheme(parsed.url, settings)
    if parsed.file and not selection and parsed.source != "url":
        # One file of a remote dataset: served from a full download if there is one.
        whole = None if refresh else cache.lookup(store, cache.cache_key(parsed.text, []))
        if whole is not None and any(f["path"] == parsed.file for f in whole.files):
            return cache.to_result(whole, cached=True)
        selection = [parsed.file]
    key = cache.cache_key(parsed.text, selection)
    lock = cache.key_lock(key)
    if not lock.acquire(blocking=False):  # never park a worker thread behind a slow download
        raise PermissionDenied(
            f"{parsed.text} is being downloaded by another call right now.",
            next_step="Wait for that call to finish, then call again: the dataset will be "
            "answered from the cache.",
        )
    try:
        hit = None if refresh else cache.lookup(store, key)
        if hit is not None:
            return cache.to_result(hit, cached=True)
        with (
            download_slot(settings),
            Deadline(settings.download_timeout_s, parsed.text) as deadline,
        ):
            report = Throttled(progress)
            record = _download_into_cache(
                parsed, selection, key, settings, store, vault, credentials,
                deadline.checking(report), deadline,
            )  # fmt: skip
    finally:
        lock.release()
    result = cache.to_result(record, cached=False)
    report.finish(result.total_bytes)
    return result


def _download_into_cache(
    parsed: DatasetRef,
    selection: list[str],
    key: str,
    settings: Settings,
    store: Store,
    vault: SecretVault,
    credentials: str | None,
    progress: ProgressFn,
    deadline: Deadline,
) -> DatasetRecord:
    """Download into a staging folder that becomes the dataset's folder only when complete."""
    dataset_id = cache.dataset_id_for(key)
    with cache.staging(settings.datasets_dir, dataset_id) as tmp:
        meta = _download(parsed, selection, tmp, settings, vault, credentials, progress, deadline)
        files_found = cache.inventory(tmp)
        if not files_found:
            raise DatasetError(
                f"{parsed.text} downloaded no files.", next_step="Check the reference."
            )
        deadline.check()
    final = settings.datasets_dir / dataset_id
    return cache.save(
        store,
        key=key,
        source=parsed.source or "url",
        local_dir=final,
        files=files_found,
        meta=meta,
    )


def _download(
    parsed: DatasetRef,
    selection: list[str],
    tmp: Path,
    settings: Settings,
    vault: SecretVault,
    credentials: str | None,
    progress: ProgressFn,
    deadline: Deadline,
) -> dict[str, object]:
    if parsed.source in ("kaggle", "kaggle-competition"):
        secret = vault.credential(
            credentials or "secret://KAGGLE", destination=kaggle_api_url(settings)
        )
        return kaggle_source.download(
            parsed, selection, tmp, settings=settings, credentials=secret, progress=progress
        )
    if parsed.source == "hf":
        token = hf_source.resolve_token(vault, credentials, settings)
        return hf_source.download(
            parsed, selection, tmp, settings=settings, token=token, progress=progress
        )
    if selection:
        raise DatasetError(
            "A URL names one file; the files argument applies to archives only after download.",
            next_step="Drop the files argument; download_dataset extracts archives and lists "
            "every file.",
        )
    return url_source.download(parsed, tmp, settings=settings, progress=progress, deadline=deadline)


def _sql(
    parsed: DatasetRef,
    files: list[str] | None,
    settings: Settings,
    store: Store,
    vault: SecretVault,
    refresh: bool,
    progress: ProgressFn,
) -> DownloadResult:
    from mltrainer.tools.datasets import sql_source  # its libraries are an optional extra

    if files:
        raise DatasetError(
            "A sql: dataset is one table; the files argument does not apply.",
            next_step="Drop the files argument.",
        )
    return sql_source.fetch(
        parsed, settings=settings, store=store, vault=vault, refresh=refresh, progress=progress
    )


def cached_record(store: Store, dataset_id: str) -> DatasetRecord:
    record = store.get_dataset(dataset_id)
    if not cache.is_intact(record):
        raise DatasetError(
            f"The files of {dataset_id} changed or disappeared from {record.local_dir}.",
            next_step=f"Download it again with download_dataset('{record.ref.split('#')[0]}').",
        )
    return record


def _local(
    parsed: DatasetRef, selection: list[str], settings: Settings, store: Store
) -> DownloadResult:
    assert parsed.path is not None
    policy = PathPolicy(settings)
    path = policy.check(parsed.path)
    if path.is_file():
        local_dir, names = path.parent, [path.name]
    else:  # the folder's own files (links are not followed), without any that is never read
        local_dir, names = path, policy.visible(path, cache.walk_files(path))
    if parsed.file or selection:
        wanted = selection or [str(parsed.file)]
        missing = [name for name in wanted if name not in names]
        if missing:
            raise DatasetError(
                f"{parsed.text} has no file(s) {', '.join(missing)}.",
                next_step=f"Files there include: {', '.join(names[:20])}.",
            )
        names = wanted
    key = cache.cache_key(f"local:{path}", selection)
    signature = [[name, *_stat(local_dir / name)] for name in names]
    record = store.find_dataset(key)
    if record is not None and record.meta.get("signature") == signature:
        return cache.to_result(record, cached=True)
    found = cache.inventory(local_dir, names)
    meta: dict[str, object] = {"title": path.name, "signature": signature}
    record = cache.save(store, key=key, source="local", local_dir=local_dir, files=found, meta=meta)
    return cache.to_result(record, cached=False)


def _stat(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_size, info.st_mtime_ns]

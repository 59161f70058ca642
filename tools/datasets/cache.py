"""The download cache: one directory per dataset_id under ``settings.datasets_dir``, one row
per download in the store, keyed by the canonical reference and the file selection."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mltrainer.state.files import share_dataset_files
from mltrainer.state.models import DatasetRecord
from mltrainer.state.store import Store
from mltrainer.tools.datasets.models import DatasetFile, DownloadResult, Source

CHUNK = 1024 * 1024
SKIP_DIRS = frozenset({".cache", ".git", ".download", "__MACOSX"})
LISTED_FILES = 100
TABLE_HINT_SUFFIXES = (".csv", ".tsv", ".parquet", ".jsonl", ".xlsx", ".csv.gz")

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def key_lock(key: str) -> threading.Lock:
    """One lock per cache key, so two identical downloads never race on one directory."""
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def cache_key(ref_text: str, selection: list[str]) -> str:
    return ref_text + ("#" + ",".join(selection) if selection else "")


def dataset_id_for(key: str) -> str:
    return "ds_" + hashlib.sha256(key.encode()).hexdigest()[:12]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def walk_files(root: Path) -> list[str]:
    """Regular files under ``root`` as sorted relative posix paths; links are not followed."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for name in filenames:
            full = Path(dirpath, name)
            if full.is_file() and not full.is_symlink():
                found.append(full.relative_to(root).as_posix())
    return sorted(found)


def inventory(root: Path, names: list[str] | None = None) -> list[DatasetFile]:
    names = walk_files(root) if names is None else sorted(names)
    return [
        DatasetFile(path=name, bytes=(root / name).stat().st_size, sha256=sha256_file(root / name))
        for name in names
    ]


def checksum(files: list[DatasetFile]) -> str:
    digest = hashlib.sha256()
    for item in sorted(files, key=lambda f: f.path):
        digest.update(f"{item.path}\0{item.sha256}\n".encode())
    return digest.hexdigest()


def is_intact(record: DatasetRecord) -> bool:
    """The files a record lists are all still there with their recorded sizes."""
    root = Path(record.local_dir)
    for item in record.files:
        path = root / str(item["path"])
        try:
            if path.stat().st_size != item["bytes"]:
                return False
        except OSError:
            return False
    return root.is_dir()


def lookup(store: Store, key: str) -> DatasetRecord | None:
    record = store.find_dataset(key)
    return record if record is not None and is_intact(record) else None


def save(
    store: Store,
    *,
    key: str,
    source: Source,
    local_dir: Path,
    files: list[DatasetFile],
    meta: dict[str, object],
) -> DatasetRecord:
    record = DatasetRecord(
        id=dataset_id_for(key),
        ref=key,
        source=source,
        local_dir=str(local_dir),
        files=[f.model_dump() for f in files],
        checksum=checksum(files),
        meta=meta,
    )
    return store.upsert_dataset(record)


def to_result(record: DatasetRecord, *, cached: bool) -> DownloadResult:
    files = [DatasetFile.model_validate(item) for item in record.files]
    first = _suggested(files)
    return DownloadResult(
        dataset_id=record.id,
        ref=record.ref,
        source=record.source,
        local_dir=record.local_dir,
        files=files[:LISTED_FILES],
        file_count=len(files),
        total_bytes=sum(f.bytes for f in files),
        checksum=record.checksum or checksum(files),
        cached=cached,
        title=_str_or_none(record.meta.get("title")),
        licence=_str_or_none(record.meta.get("licence")),
        next_step=(
            f"Profile it with profile_dataset('{record.id}/{first}') or train with "
            f"train_model(dataset='{record.id}/{first}', ...)."
            if first
            else "The dataset has no files."
        ),
    )


def _suggested(files: list[DatasetFile]) -> str | None:
    """The file to name in the next-step hint: a training table if there is one."""
    tables = [f.path for f in files if f.path.lower().endswith(TABLE_HINT_SUFFIXES)]
    trains = [p for p in tables if p.rsplit("/", 1)[-1].lower().startswith("train")]
    candidates = trains or tables or [f.path for f in files]
    return candidates[0] if candidates else None


def _str_or_none(value: object) -> str | None:
    return str(value) if value is not None else None


@contextmanager
def staging(datasets_dir: Path, dataset_id: str) -> Iterator[Path]:
    """A fresh scratch directory that becomes ``datasets_dir/dataset_id`` on success only."""
    datasets_dir.mkdir(parents=True, exist_ok=True)
    tmp = datasets_dir / f".partial-{dataset_id}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    final = datasets_dir / dataset_id
    share_dataset_files(tmp)
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)

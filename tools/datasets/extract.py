"""Safe extraction of zip and tar archives.

Every member is checked before anything is written: no absolute paths, no '..', no links,
devices or FIFOs, at most ``max_entries`` members and ``max_bytes`` in total. Sizes declared
in the archive are checked up front and the bytes actually written are counted too, so an
archive that lies about its sizes is stopped as well.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from mltrainer.state.errors import DatasetError, MLTrainerError
from mltrainer.tools.datasets.refs import safe_member

CHUNK = 1024 * 1024
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def is_archive(path: Path) -> bool:
    if zipfile.is_zipfile(path):
        return True
    return path.name.lower().endswith(ARCHIVE_SUFFIXES) and tarfile.is_tarfile(path)


def extract(archive: Path, target: Path, *, max_bytes: int, max_entries: int) -> list[str]:
    """Extract ``archive`` into ``target``; returns the relative paths of the files written."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            return _extract_zip(archive, target, max_bytes, max_entries)
        return _extract_tar(archive, target, max_bytes, max_entries)
    except MLTrainerError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DatasetError(
            f"The archive {archive.name} is corrupt or truncated ({type(exc).__name__}: {exc}).",
            next_step="Download it again; if it keeps failing the source file is broken.",
        ) from None


def _refuse(archive: Path, member: str, why: str) -> DatasetError:
    return DatasetError(
        f"Refusing to extract {archive.name}: member '{member[:200]}' {why}. Nothing was kept.",
        next_step="The archive is unsafe or malformed; get the data from another source.",
    )


def _member_name(archive: Path, name: str) -> str:
    try:
        return safe_member(name.rstrip("/"))
    except MLTrainerError:
        raise _refuse(archive, name, "points outside the target directory") from None


def _check_counts(
    archive: Path, entries: int, declared: int, max_bytes: int, max_entries: int
) -> None:
    if entries > max_entries:
        raise DatasetError(
            f"Refusing to extract {archive.name}: it has {entries} entries, more than the limit "
            f"of {max_entries}.",
            next_step="Raise MLTRAINER_MAX_EXTRACT_ENTRIES if you trust this archive.",
        )
    if declared > max_bytes:
        raise _too_big(archive, max_bytes)


def _too_big(archive: Path, max_bytes: int) -> DatasetError:
    return DatasetError(
        f"Refusing to extract {archive.name}: it expands to more than {max_bytes:,} bytes "
        "(possible zip bomb).",
        next_step="Raise MLTRAINER_MAX_EXTRACT_BYTES if you trust this archive, or pick "
        "single files with the files argument.",
    )


class _Budget:
    def __init__(self, archive: Path, max_bytes: int) -> None:
        self.archive, self.left, self.max_bytes = archive, max_bytes, max_bytes

    def copy(self, source: IO[bytes], dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("xb") as out:
            while chunk := source.read(CHUNK):
                self.left -= len(chunk)
                if self.left < 0:
                    raise _too_big(self.archive, self.max_bytes)
                out.write(chunk)


def _extract_zip(archive: Path, target: Path, max_bytes: int, max_entries: int) -> list[str]:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        _check_counts(archive, len(infos), sum(i.file_size for i in infos), max_bytes, max_entries)
        plan: list[tuple[zipfile.ZipInfo, str]] = []
        for info in infos:
            name = _member_name(archive, info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise _refuse(archive, info.filename, "is a symbolic link")
            kind = stat.S_IFMT(mode)  # 0 when the archiver recorded permissions only
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                raise _refuse(archive, info.filename, "is a device, FIFO or socket")
            if not info.is_dir():
                plan.append((info, name))
        budget = _Budget(archive, max_bytes)
        with _cleanup_on_error(target):
            for info, name in plan:
                with zf.open(info) as source:
                    budget.copy(source, target / name)
    return sorted(name for _, name in plan)


def _extract_tar(archive: Path, target: Path, max_bytes: int, max_entries: int) -> list[str]:
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        _check_counts(archive, len(members), sum(m.size for m in members), max_bytes, max_entries)
        plan: list[tuple[tarfile.TarInfo, str]] = []
        for member in members:
            name = _member_name(archive, member.name)
            if member.issym() or member.islnk():
                raise _refuse(archive, member.name, "is a link")
            if member.isdev() or member.isfifo():
                raise _refuse(archive, member.name, "is a device or FIFO")
            if member.isfile():
                plan.append((member, name))
            elif not member.isdir():
                raise _refuse(archive, member.name, "is not a regular file or directory")
        budget = _Budget(archive, max_bytes)
        with _cleanup_on_error(target):
            for member, name in plan:
                source = tf.extractfile(member)
                if source is None:
                    raise _refuse(archive, member.name, "cannot be read")
                with source:
                    budget.copy(source, target / name)
    return sorted(name for _, name in plan)


@contextmanager
def _cleanup_on_error(target: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise

"""Files the server writes under its state directory: private to the person, and masked.

Every text artifact (profiles, predictions, model metadata, cards, logs) is written through
``write_text``: its secrets are masked before the bytes reach the disk, the file is created
readable by its owner only (0600), and it appears whole or not at all (written beside, then
renamed into place).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mltrainer.state.masking import Masker
from mltrainer.state.settings import Settings

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
DATASET_FILE = 0o644
PRIVATE_UMASK = 0o077
log = logging.getLogger("mltrainer")


def private_dir(path: Path) -> Path:
    """Create ``path`` and every missing parent readable by its owner only (``mkdir``'s mode
    alone would apply to the last folder, and only through the umask)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # another thread made it first
        folder.chmod(PRIVATE_DIR)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, mode 0600."""
    with staged(path) as tmp:
        tmp.write_bytes(data)
    return path


@contextmanager
def staged(path: Path) -> Iterator[Path]:
    """The file to write ``path`` through: created beside it (empty, mode 0600), renamed into
    place when the block ends and removed if it raises, so ``path`` appears whole or not at
    all. A writer given a path (``skops.io.dump``) needs no bytes of the whole file in memory."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE))
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str, masker: Masker) -> Path:
    """Write a text artifact: secrets masked first, then atomically, mode 0600."""
    return write_bytes(path, masker.mask(text).encode("utf-8"))


def private_umask() -> int:
    """Make every file and folder this process creates from now on private (umask 077);
    returns the previous umask. The server and the job worker call it at start."""
    return os.umask(PRIVATE_UMASK)


def tighten_state_dir(settings: Settings) -> list[str]:
    """Make the state directory 0700, every folder in it 0700 and every file 0600 where they
    were looser (dataset files excepted: see ``share_dataset_files``), and create the database file private if it is missing (SQLite gives its -wal
    and -shm files the database's mode). Returns one line per change, also logged as one
    warning. Call at start, before the store opens the database. Links are not followed; on
    Windows, where modes mean little, nothing is done."""
    if os.name == "nt":
        return []
    private_dir(settings.home)
    if not settings.db_path.exists():
        os.close(os.open(settings.db_path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    changes = [_tighten(settings.home)]
    shared = str(settings.datasets_dir)
    for dirpath, dirnames, filenames in os.walk(settings.home):
        changes += [_tighten(Path(dirpath, name)) for name in dirnames]
        if dirpath != shared and not dirpath.startswith(shared + os.sep):
            changes += [_tighten(Path(dirpath, name)) for name in filenames]
    done = [change for change in changes if change]
    if done:
        log.warning(
            "tightened the permissions of %d path(s) in %s that other users could read: %s",
            len(done),
            settings.home,
            "; ".join(done[:10]) + (" ..." if len(done) > 10 else ""),
        )
    return done


def share_dataset_files(folder: Path) -> None:
    """Let the sandbox's unprivileged user read downloaded data files (0644), which a Docker
    sandbox is given one by one. They are the person's data, not secrets, and the folders
    above them stay 0700, so no other user of the machine can reach them."""
    if os.name == "nt":
        return
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            path = Path(dirpath, name)
            if not path.is_symlink():
                path.chmod(DATASET_FILE)


def _tighten(path: Path) -> str | None:
    try:
        info = path.lstat()
    except OSError:
        return None
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode) or not mode & 0o077:
        return None
    wanted = PRIVATE_DIR if stat.S_ISDIR(info.st_mode) else mode & 0o700  # owner bits kept
    try:
        path.chmod(wanted)
    except OSError as exc:
        return f"{path}: could not change {mode:o} ({exc.strerror})"
    return f"{path}: {mode:o} -> {wanted:o}"

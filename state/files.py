"""Files the server writes under its state directory: private to the person, and masked.

Every text artifact (profiles, predictions, model metadata, cards, logs) is written through
``write_text``: its secrets are masked before the bytes reach the disk, the file is created
readable by its owner only (0600), and it appears whole or not at all (written beside, then
renamed into place).
"""

from __future__ import annotations

import os
from pathlib import Path

from mltrainer.state.masking import Masker

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) readable by its owner only."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, mode 0600."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str, masker: Masker) -> Path:
    """Write a text artifact: secrets masked first, then atomically, mode 0600."""
    return write_bytes(path, masker.mask(text).encode("utf-8"))

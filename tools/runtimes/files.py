"""Files of a remote job: its folders under the state directory, what goes into them, and
what comes back.

A job that runs elsewhere keeps everything under ``$MLTRAINER_HOME/jobs/<job_id>/``: ``run/``
(the folder shipped: entry script and config), ``input/`` (the data, linked or copied),
``sample/`` (the dry run's slice of it) and ``fetched/`` (what came back).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mltrainer.state.files import write_text
from mltrainer.state.masking import Masker

RUN, INPUT, SAMPLE, FETCHED = "run", "input", "sample", "fetched"
# Files that come back are masked when they are text; larger ones are kept as they are (a
# model or a data file, not a log).
MASK_UP_TO_BYTES = 20 * 1024 * 1024


def readable(root: Path) -> None:
    """Directories 0755 and files 0644: the Docker sandbox reads them as another user."""
    for directory, _, names in os.walk(root):
        os.chmod(directory, 0o755)
        for name in names:
            os.chmod(os.path.join(directory, name), 0o644)


def link_or_copy(source: Path, target: Path) -> Path:
    """``target`` with the content of ``source``: a hard link where the file system allows one
    (no second copy of a large table), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target


def link_tree(source: Path, target: Path) -> Path:
    """``target`` holding every file under the folder ``source``, each linked or copied."""
    for path in sorted(source.rglob("*")):
        if path.is_file() and not path.is_symlink():
            link_or_copy(path, target / path.relative_to(source))
    target.mkdir(parents=True, exist_ok=True)
    return target


def size_bytes(path: Path) -> int:
    """The size of a file, or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def mask_text_files(root: Path, masker: Masker) -> list[Path]:
    """Mask, in place, every text file under ``root`` that a secret could have reached; the
    files changed. Binary files (a model, a plot) are left as they are."""
    changed = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        if path.stat().st_size > MASK_UP_TO_BYTES:
            continue
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if masker.mask(text) != text:
            write_text(path, text, masker)
            changed.append(path)
    return changed

"""Which host paths may be shown to the sandbox (read-only), and workspace bookkeeping."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mltrainer.state.guard import PathPolicy
from mltrainer.state.settings import Settings

INTERNAL_DIR = ".mltrainer"
MAX_SCAN_ENTRIES = 20_000


def validate_files(raw: list[str], settings: Settings) -> list[Path]:
    """Resolve each path through the one path guard (``mltrainer.state.guard``); a folder is
    shown whole, so it must hold nothing the guard refuses either."""
    policy = PathPolicy(settings)
    resolved: list[Path] = []
    for item in raw:
        path = policy.check(item)
        if path.is_dir():
            policy.check_tree(path, item)
        if path not in resolved:
            resolved.append(path)
    return resolved


Snapshot = dict[str, tuple[int, int]]


def snapshot(workspace: Path) -> Snapshot:
    """(mtime_ns, size) of every file under the workspace, never following symlinks; what
    vanishes while it is read is left out."""
    seen: Snapshot = {}
    stack = [workspace]
    while stack and len(seen) < MAX_SCAN_ENTRIES:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            rel = os.path.relpath(entry.path, workspace)
            if rel == INTERNAL_DIR:
                continue
            try:  # a file may vanish meanwhile (the session closed, or the code deleted it)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                    continue
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            seen[rel] = (info.st_mtime_ns, info.st_size)
    return seen


def changed(before: Snapshot, after: Snapshot) -> list[str]:
    return sorted(rel for rel, sig in after.items() if before.get(rel) != sig)


def read_inside(workspace: Path, rel: str, limit: int) -> bytes | None:
    """Read a file the sandbox wrote, refusing symlinks and anything resolving outside it."""
    root = os.path.realpath(workspace)
    target = os.path.realpath(os.path.join(root, rel))
    if os.path.commonpath([root, target]) != root:
        return None
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(limit + 1)

"""Which host paths may be shown to the sandbox (read-only), and workspace bookkeeping."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mltrainer.state.errors import InvalidInput, NotFound, PermissionDenied
from mltrainer.state.settings import Settings

INTERNAL_DIR = ".mltrainer"
MAX_SCAN_ENTRIES = 20_000
# Credential stores that are never mounted, whatever the data roots say.
CREDENTIAL_DIRS = (
    ".kaggle",
    ".ssh",
    ".aws",
    ".config",
    ".gnupg",
    ".docker",
    ".netrc",
    ".modal.toml",
)


def allowed_roots(settings: Settings) -> list[Path]:
    roots = [Path.cwd(), settings.home, *settings.data_roots]
    return [Path(os.path.realpath(root)) for root in roots]


def forbidden_paths(settings: Settings) -> list[Path]:
    """The state database, the secrets file and the usual credential stores."""
    home = Path(os.path.expanduser("~"))
    paths = [settings.db_path, settings.secrets_path, settings.home / "sandbox"]
    paths += [Path(f"{settings.db_path}-wal"), Path(f"{settings.db_path}-shm")]
    paths += [home / name for name in CREDENTIAL_DIRS]
    return [Path(os.path.realpath(path)) for path in paths]


def validate_files(raw: list[str], settings: Settings) -> list[Path]:
    """Resolve each path and refuse any outside the data roots or holding credentials/state."""
    roots = allowed_roots(settings)
    forbidden = forbidden_paths(settings)
    resolved: list[Path] = []
    for item in raw:
        if "\0" in item or not item.strip():
            raise InvalidInput(f"Invalid file path {item!r}.", next_step="Pass a path to a file.")
        path = Path(os.path.realpath(os.path.expanduser(item)))
        if not path.exists():
            raise NotFound(f"File '{item}' does not exist.", next_step="Check the path.")
        if not any(path.is_relative_to(root) for root in roots):
            shown = ", ".join(str(root) for root in roots)
            raise PermissionDenied(
                f"'{item}' is outside the directories the sandbox may read ({shown}).",
                next_step="Move the file under one of them, or add its directory to "
                "MLTRAINER_DATA_ROOTS.",
            )
        for bad in forbidden:
            if path == bad or path.is_relative_to(bad) or bad.is_relative_to(path):
                raise PermissionDenied(
                    f"'{item}' is or contains the server's state or credentials ({bad}).",
                    next_step="Pass the data file itself, e.g. a CSV under the datasets directory.",
                )
        if path not in resolved:
            resolved.append(path)
    return resolved


Snapshot = dict[str, tuple[int, int]]


def snapshot(workspace: Path) -> Snapshot:
    """(mtime_ns, size) of every regular file under the workspace, never following symlinks."""
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
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            else:
                stat = entry.stat(follow_symlinks=False)
                seen[rel] = (stat.st_mtime_ns, stat.st_size)
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

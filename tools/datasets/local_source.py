"""Local files and directories, allowed only under the configured roots."""

from __future__ import annotations

import os
from pathlib import Path

from mltrainer.state.errors import NotFound, PermissionDenied
from mltrainer.state.settings import Settings

ROOTS_HINT = (
    "Allowed roots: the current directory, the state directory and MLTRAINER_DATA_ROOTS. "
    "Move the file under one of them, or add its directory to MLTRAINER_DATA_ROOTS."
)


def roots(settings: Settings) -> list[Path]:
    return [Path(os.getcwd()), settings.home, *settings.data_roots]


def _under(path: str, bases: list[str]) -> bool:
    return any(path == base or path.startswith(base.rstrip(os.sep) + os.sep) for base in bases)


def resolve_local(text: str, settings: Settings) -> Path:
    """The real path of ``text``: checked lexically against the roots before any filesystem
    access, and again after symlinks are resolved."""
    expanded = os.path.expanduser(text) if text.startswith("~") else text
    lexical = os.path.normpath(os.path.abspath(expanded))
    if not _under(lexical, [os.path.normpath(os.path.abspath(r)) for r in roots(settings)]):
        raise PermissionDenied(
            f"Refusing the path '{text}': it is outside the allowed roots.", next_step=ROOTS_HINT
        )
    if not os.path.exists(lexical):
        raise NotFound(f"No file or directory at '{text}'.", next_step="Check the path.")
    real = os.path.realpath(lexical)
    if not _under(real, [os.path.realpath(r) for r in roots(settings)]):
        raise PermissionDenied(
            f"Refusing the path '{text}': it links to a place outside the allowed roots.",
            next_step=ROOTS_HINT,
        )
    return Path(real)

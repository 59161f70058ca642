"""The versions of the libraries a model was trained with, recorded beside it."""

from __future__ import annotations

LIBRARIES = (
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "xgboost",
    "optuna",
    "skops",
    "mltrainer-mcp",
)


def library_versions() -> dict[str, str]:
    """``{distribution: version}`` of every library in LIBRARIES that is installed."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found

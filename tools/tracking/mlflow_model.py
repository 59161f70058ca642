"""The final model as an MLflow model that ``mlflow models serve`` can serve.

A scikit-learn pipeline is saved with the sklearn flavour in skops format (no pickle), trusting
exactly the types the model folder recorded; the project's own classes it holds travel with it
as code (``code/mltrainer/...``, the self-contained module the standalone predict.py also
inlines), so loading needs neither this project nor its version installed. A bare XGBoost model
gets the xgboost flavour. Before anything is uploaded, every file of the saved model (and every
member of its archives) is checked for a secret's value in any encoded form: a model that holds
one is not logged, and the run says why.
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from mltrainer.state.errors import InvalidInput
from mltrainer.state.masking import Masker
from mltrainer.tools.tracking.record import ModelFiles

PROJECT_PREFIX = "mltrainer."
Flavor = Literal["sklearn", "xgboost"]


def flavor_of(estimator: Any) -> Flavor:
    xgboost = sys.modules.get("xgboost")  # only an imported xgboost can have made the model
    if xgboost is not None and isinstance(estimator, xgboost.XGBModel):
        return "xgboost"
    return "sklearn"


def save_mlflow_model(
    estimator: Any, path: Path, mlflow_model: Any, model: ModelFiles, staging: Path
) -> Flavor:
    """Save ``estimator`` as an MLflow model in ``path`` (``staging`` holds the code copy)."""
    flavor = flavor_of(estimator)
    if flavor == "xgboost":
        import mlflow.xgboost

        mlflow.xgboost.save_model(
            estimator,
            str(path),
            mlflow_model=mlflow_model,
            pip_requirements=requirements(("xgboost", "scikit-learn", "numpy", "pandas")),
        )
        return flavor
    import mlflow.sklearn

    libraries = ["scikit-learn", "numpy", "pandas", "scipy", "skops"]
    if any(t.startswith("xgboost.") for t in model.trusted_types):
        libraries.append("xgboost")
    mlflow.sklearn.save_model(
        estimator,
        str(path),
        mlflow_model=mlflow_model,
        serialization_format="skops",
        skops_trusted_types=list(model.trusted_types),
        code_paths=project_code(model.trusted_types, staging),
        pip_requirements=requirements(libraries),
    )
    return flavor


def project_code(trusted_types: list[str], staging: Path) -> list[str] | None:
    """A copy of the project modules the model's types live in, laid out as their packages."""
    modules = sorted({t.rsplit(".", 1)[0] for t in trusted_types if t.startswith(PROJECT_PREFIX)})
    if not modules:
        return None
    root = staging / "mltrainer"
    for name in modules:
        module = sys.modules.get(name)
        source = getattr(module, "__file__", None)
        if source is None:
            raise InvalidInput(
                f"The model uses {name}, which is not loaded: its code cannot travel with it."
            )
        parts = name.split(".")[1:]
        target = root.joinpath(*parts[:-1])
        target.mkdir(parents=True, exist_ok=True)
        if hasattr(module, "__path__"):  # a package: its modules travel with it
            package = Path(source).parent
            shutil.copytree(
                package, target / parts[-1], ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copyfile(source, target / f"{parts[-1]}.py")
    for folder in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        (folder / "__init__.py").touch()
    return [str(root)]


def requirements(libraries: list[str] | tuple[str, ...]) -> list[str]:
    pinned = []
    for name in libraries:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pinned


def files_with_secrets(path: Path, masker: Masker) -> list[str]:
    """Files under ``path`` (or archive members) holding a secret in any encoded form."""
    found = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        data = file.read_bytes()
        chunks = [data]
        if zipfile.is_zipfile(file):
            with zipfile.ZipFile(file) as archive:
                chunks += [archive.read(member) for member in archive.namelist()]
        if any(holds_secret(chunk, masker) for chunk in chunks):
            found.append(file.relative_to(path).as_posix())
    return found


def holds_secret(data: bytes, masker: Masker) -> bool:
    """Byte for byte (latin-1), an ASCII secret reads as itself; without the NUL bytes, so does
    one stored as UTF-16 or UTF-32, as numpy string arrays are."""
    for candidate in (data, data.replace(b"\0", b"")):
        text = candidate.decode("latin-1")
        if masker.mask(text) != text:
            return True
    return False

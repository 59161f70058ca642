"""Saving and loading trained models, and predicting with them.

A model is a folder: ``model.skops`` (the fitted estimator, in skops' safe format: no
pickle) and ``meta.json`` (what it predicts, from which columns, how well). Loading trusts
only the types recorded at save time, and only from libraries on an allow-list.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from mltrainer.state.errors import InvalidInput, NotFound
from mltrainer.state.models import utcnow

if TYPE_CHECKING:
    import pandas as pd

MODEL_FILE = "model.skops"
META_FILE = "meta.json"
CLASSIFICATION = ("binary", "multiclass", "text_classification")
# Whole libraries of estimators and arrays; never builtins or pandas as a whole (they hold
# eval, read_pickle and the like). functools.partial is safe: skops checks what it wraps.
TRUSTED_PREFIXES = (
    "numpy.",
    "scipy.",
    "sklearn.",
    "xgboost.",
    "functools.partial",
    "mltrainer.tools.training.engine.custom.",
)
# Where the classes that models saved by earlier versions name live now: mltrainer 0.1.0
# installed its folders as top-level packages (tools.training...).
LEGACY_MODULES = {"tools.training.engine.custom": "mltrainer.tools.training.engine.custom"}
_legacy_lock = threading.Lock()


class ModelMeta(BaseModel):
    model_id: str
    job_id: str | None = None
    task: str
    target: str | None
    features: list[str]
    classes: list[str] | None = None
    positive_class: str | None = None
    metric: str
    score: float | None = None
    name: str = Field(default="model", description="The winning candidate's name.")
    created_at: str = Field(default_factory=lambda: utcnow().isoformat())
    library_versions: dict[str, str] = Field(default_factory=dict)
    trusted_types: list[str] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("scikit-learn", "xgboost", "pandas", "numpy", "skops", "mltrainer-mcp"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def save_model(folder: Path, estimator: Any, meta: ModelMeta) -> ModelMeta:
    import skops.io as sio

    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (MODEL_FILE + ".tmp")
    sio.dump(estimator, tmp)
    untrusted = sio.get_untrusted_types(file=tmp)
    meta = meta.model_copy(
        update={"trusted_types": sorted(untrusted), "library_versions": library_versions()}
    )
    tmp.replace(folder / MODEL_FILE)
    (folder / META_FILE).write_text(meta.model_dump_json(indent=2))
    return meta


class LoadedModel:
    def __init__(self, estimator: Any, meta: ModelMeta) -> None:
        self.estimator = estimator
        self.meta = meta

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One row per input row, in order: ``prediction``, and ``proba_<class>`` per class."""
        import pandas as pd

        missing = [c for c in self.meta.features if c not in frame.columns]
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise InvalidInput(
                f"The data lacks {len(missing)} column(s) the model needs: {shown}.",
                next_step="Predict on a file with the same columns as the training data "
                "(the target column may be left out).",
            )
        features = frame[self.meta.features]
        try:
            predicted = self.estimator.predict(features)
            proba = (
                self.estimator.predict_proba(features)
                if self.meta.task in CLASSIFICATION and hasattr(self.estimator, "predict_proba")
                else None
            )
        except (ValueError, TypeError) as error:  # e.g. an unknown series id, unparseable dates
            raise InvalidInput(
                f"The model cannot predict these rows: {error}",
                next_step="Predict on rows shaped like the training data (same columns, types "
                "and, for forecasts, known series ids).",
            ) from error
        out = pd.DataFrame({"prediction": predicted}, index=frame.index)
        if proba is not None:
            classes = self.meta.classes or [str(c) for c in self.estimator.classes_]
            for i, label in enumerate(classes):
                out[f"proba_{label}"] = proba[:, i]
        return out.reset_index(drop=True)


def load_model(folder: Path) -> LoadedModel:
    import skops.io as sio

    meta_path, model_path = folder / META_FILE, folder / MODEL_FILE
    if not meta_path.is_file() or not model_path.is_file():
        raise NotFound(
            f"The model files in {folder} are missing.",
            next_step="Train the model again with train_model.",
        )
    meta = ModelMeta.model_validate(json.loads(meta_path.read_text()))
    unsafe = [t for t in meta.trusted_types if not t.startswith(TRUSTED_PREFIXES + _legacy())]
    if unsafe:
        raise InvalidInput(
            f"Refusing to load {model_path}: it holds types outside the allow-list ({unsafe[:3]}).",
            next_step="Only load models this server trained.",
        )
    with _legacy_module_names():
        estimator = sio.load(model_path, trusted=meta.trusted_types)
    return LoadedModel(estimator, meta)


def _legacy() -> tuple[str, ...]:
    return tuple(f"{old}." for old in LEGACY_MODULES)


@contextlib.contextmanager
def _legacy_module_names() -> Iterator[None]:
    """While loading, the module names earlier versions recorded resolve to today's modules.

    Only the exact module names are registered (never a package such as ``tools``), and only
    for the duration of the load.
    """
    import importlib

    with _legacy_lock:
        added = [old for old in LEGACY_MODULES if old not in sys.modules]
        for old in added:
            sys.modules[old] = importlib.import_module(LEGACY_MODULES[old])
        try:
            yield
        finally:
            for old in added:
                sys.modules.pop(old, None)

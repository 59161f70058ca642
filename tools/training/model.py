"""Saving and loading trained models, and predicting with them.

A model is a folder: ``model.skops`` (the fitted estimator, in skops' safe format: no pickle)
and ``meta.json`` (what it predicts, from which columns, how well). Loading is refused unless
the file's sha256 is the one recorded when it was saved (the store keeps it) and every type the
file names is on the project's allow-list (trusted.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from mltrainer.state.errors import InvalidInput, NotFound, UntrustedModel
from mltrainer.state.files import private_dir, staged, write_text
from mltrainer.state.masking import Masker
from mltrainer.state.models import ModelRecord, utcnow
from mltrainer.state.store import Store
from mltrainer.tools.training.inputs import (
    InputProfile,
    PredictionWarning,
    check_inputs,
    coerce,
    forecast_in_history,
)
from mltrainer.tools.training.trusted import LEGACY_MODULES, checked_types, skops_io
from mltrainer.tools.training.versions import library_versions

if TYPE_CHECKING:
    import pandas as pd

MODEL_FILE = "model.skops"
# Rows a model scores at a time: its pipeline's copies of the rows (encoded, as floats, per
# member of an ensemble) stay this size however many rows are predicted.
PREDICT_CHUNK_ROWS = 100_000
META_FILE = "meta.json"
CLASSIFICATION = ("binary", "multiclass", "text_classification")
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
    score: float | None = Field(
        default=None,
        description="Held-out test score of the chosen pipeline fitted on the training rows only "
        "(score_source 'holdout'); for a model published while the search ran, its validation "
        "score ('validation').",
    )
    score_source: Literal["holdout", "validation"] | None = None
    refit: bool = Field(
        default=False, description="Refitted on every row after it was scored (what predicts)."
    )
    threshold: float | None = Field(
        default=None, description="Decision threshold on the positive class's probability."
    )
    inputs: InputProfile | None = Field(
        default=None, description="What the training rows looked like: predict warns from it."
    )
    name: str = Field(default="model", description="The winning candidate's name.")
    created_at: str = Field(default_factory=lambda: utcnow().isoformat())
    library_versions: dict[str, str] = Field(default_factory=dict)
    trusted_types: list[str] = Field(
        default_factory=list,
        description="The types model.skops names beyond skops' defaults (all on the project's "
        "allow-list when it was saved), for people and tools that load it themselves (the model "
        "card, deployment). Loading never trusts this list: it checks the allow-list.",
    )
    extra: dict[str, Any] = Field(default_factory=dict)


class SavedModel(BaseModel):
    meta: ModelMeta
    file_sha256: str = Field(description="The sha256 of model.skops, to verify before loading.")


def model_record(meta: ModelMeta, job_id: str, folder: Path, file_sha256: str) -> ModelRecord:
    """The store's row for job ``job_id``'s model saved in ``folder`` (its file's digest, which
    loading checks)."""
    return ModelRecord(
        id=meta.model_id,
        job_id=job_id,
        task=meta.task,
        target=meta.target,
        metric=meta.metric,
        score=meta.score,
        path=str(folder),
        features=meta.features,
        classes=meta.classes,
        summary={"name": meta.name},
        file_sha256=file_sha256,
    )


def save_model(folder: Path, estimator: Any, meta: ModelMeta, masker: Masker) -> SavedModel:
    """Write model.skops (readable by its owner only) and meta.json (masked) into ``folder``."""
    private_dir(folder)
    # Written to the file as skops serialises it: ``dumps`` returned a copy of the whole file
    # (17 MB for a 26-class ensemble) while its own buffer was still alive.
    with staged(folder / MODEL_FILE) as file:
        skops_io().dump(estimator, file)
        found = checked_types(MODEL_FILE, file=file)  # never save what could not be loaded
        with file.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    meta = meta.model_copy(
        update={"library_versions": library_versions(), "trusted_types": sorted(found)}
    )
    write_text(folder / META_FILE, meta.model_dump_json(indent=2), masker)
    return SavedModel(meta=meta, file_sha256=digest)


class LoadedModel:
    def __init__(self, estimator: Any, meta: ModelMeta, file_sha256: str) -> None:
        self.estimator = estimator
        self.meta = meta
        self.file_sha256 = file_sha256  # of the bytes it was loaded from

    def predict_frame(self, frame: pd.DataFrame, threshold: float | None = None) -> pd.DataFrame:
        """One row per input row, in order: ``prediction``, and ``proba_<class>`` per class.

        ``threshold`` (binary models only) replaces the model's decision threshold on the
        positive class's probability for the ``prediction`` column.
        """
        import numpy as np
        import pandas as pd

        missing = [c for c in self.meta.features if c not in frame.columns]
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise InvalidInput(
                f"The data lacks {len(missing)} column(s) the model needs: {shown}.",
                next_step="Predict on a file with the same columns as the training data "
                "(the target column may be left out).",
            )
        self._check_threshold(threshold)
        features = coerce(self.meta.inputs, frame[self.meta.features])
        # A forecast's rows depend on one another (each step feeds the next): scored at once.
        step = len(features) if self.meta.task == "forecast" else PREDICT_CHUNK_ROWS
        scored = [
            self._score(features.iloc[start : start + step])
            for start in range(0, max(len(features), 1), max(step, 1))
        ]
        predicted = np.concatenate([labels for labels, _ in scored])
        proba = None if scored[0][1] is None else np.vstack([p for _, p in scored])
        classes = self.meta.classes or [str(c) for c in getattr(self.estimator, "classes_", [])]
        if threshold is not None and proba is not None:
            positive = classes.index(str(self.meta.positive_class))
            labels = self.estimator.classes_
            chosen = proba[:, positive] >= threshold
            predicted = np.where(chosen, labels[positive], labels[1 - positive])
        out = pd.DataFrame({"prediction": predicted}, index=frame.index)
        if proba is not None:
            for i, label in enumerate(classes):
                out[f"proba_{label}"] = proba[:, i]
        return out.reset_index(drop=True)

    def _score(self, features: pd.DataFrame) -> tuple[Any, Any]:
        """The model's predictions for these rows, and its class probabilities (or None)."""
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
        return predicted, proba

    def _check_threshold(self, threshold: float | None) -> None:
        if threshold is None:
            return
        if self.meta.task not in CLASSIFICATION or len(self.meta.classes or []) != 2:
            raise InvalidInput(
                f"threshold applies to two-class models; this one is {self.meta.task} with "
                f"{len(self.meta.classes or [])} classes.",
                next_step="Leave threshold out: the model's own decision rule is used.",
            )
        if self.meta.positive_class is None:
            raise InvalidInput(
                "This model does not record its positive class, so a threshold has no meaning.",
                next_step="Leave threshold out, or train the model again.",
            )

    def check_frame(self, frame: pd.DataFrame) -> list[PredictionWarning]:
        """Where these rows differ from the training rows (see inputs.py), never silently."""
        warnings = check_inputs(self.meta.inputs, frame)
        if self.meta.task == "forecast":
            found = _forecast_history(self.estimator, frame)
            if found is not None:
                warnings.append(found)
        return warnings


def _forecast_history(model: Any, frame: pd.DataFrame) -> PredictionWarning | None:
    """The forecast-in-history warning for a ForecastModel's last date of each series."""
    import pandas as pd

    times = pd.to_datetime(pd.Series(getattr(model, "history_times", []) or []))
    if times.empty:
        return None
    series = getattr(model, "series_column", None)
    labels = getattr(model, "history_series", None)
    if series and labels:
        last = times.groupby(pd.Series(labels, dtype=str).to_numpy()).max().to_dict()
    else:
        series, last = None, {"": times.max()}
    return forecast_in_history(frame, model.time_column, last, series)


def load_model(folder: Path, *, sha256: str | None) -> LoadedModel:
    """The model in ``folder``, its file checked first.

    ``sha256`` is the hash recorded when the model was saved; a file that no longer has it is
    refused. None only for a model the store has no hash of (saved by an earlier version): then
    the allow-list alone guards the load.
    """
    meta_path, model_path = folder / META_FILE, folder / MODEL_FILE
    if not meta_path.is_file() or not model_path.is_file():
        raise NotFound(
            f"The model files in {folder} are missing.",
            next_step="Train the model again with train_model.",
        )
    data = verified_bytes(model_path, sha256)  # read once: what is checked is what is loaded
    meta = ModelMeta.model_validate_json(meta_path.read_text())
    with _legacy_module_names():
        trusted = checked_types(str(model_path), data=data)
        estimator = skops_io().loads(data, trusted=trusted)
    return LoadedModel(estimator, meta, hashlib.sha256(data).hexdigest())


def verified_bytes(path: Path, sha256: str | None) -> bytes:
    """The bytes of a model file, refused unless they have the sha256 recorded when it was
    saved (None: nothing was recorded). For whatever reads a model file: load, upload, copy."""
    data = path.read_bytes()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise UntrustedModel(
            f"Refusing to load {path}: the file changed since the model was saved "
            "(its sha256 differs from the one recorded then).",
            next_step="Train the model again with train_model; do not edit model files.",
        )
    return data


def load_record(record: ModelRecord, store: Store) -> LoadedModel:
    """The model of a store record, its file verified against the hash recorded at save time.

    A model saved before hashes were recorded is loaded under the allow-list alone, and the hash
    of the file it was loaded from is recorded then: any later change to it is refused.
    """
    loaded = load_model(Path(record.path), sha256=record.file_sha256)
    if record.file_sha256 is None:
        store.record_model_file_sha256(record.id, loaded.file_sha256)
    return loaded


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

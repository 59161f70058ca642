"""The contestants, each a function from a train split to test predictions.

Each runs in its own subprocess (see ``run_one``), so imports happen here, inside the functions.
All of them get the same raw frames; the two "defaults" baselines get only the minimal preparation
their estimators need (strings → categoricals, dates → numbers, labels → integers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.automl.datasets import Split
from bench.automl.scoring import PRIMARY, Predictions


class Skipped(Exception):
    """The contestant cannot run here (e.g. our entry point does not exist yet)."""


@dataclass(frozen=True)
class Run:
    split: Split
    budget_s: int
    seed: int


def _proba_frame(proba: np.ndarray, classes: list[str]) -> pd.DataFrame:
    return pd.DataFrame(np.asarray(proba, dtype=float), columns=[str(c) for c in classes])


def ours(run: Run) -> Predictions:
    try:
        from mltrainer.tools.training.automl import fit_automl
    except ImportError as exc:
        raise Skipped(
            f"mltrainer.tools.training.automl.fit_automl is not available yet ({exc})"
        ) from exc
    from mltrainer.tools.training.progress import NullReporter
    from mltrainer.tools.training.request import TrainRequest

    spec = run.split.spec
    request = TrainRequest(
        dataset=f"bench:{spec.name}",
        target=spec.target,
        task=spec.task,
        metric=PRIMARY[spec.task],
        time_budget_s=run.budget_s,
        positive_class=spec.positive_class,
        seed=run.seed,
    )
    result = fit_automl(run.split.train_frame, request, NullReporter())
    estimator = result.estimator
    X_test = run.split.X_test[list(result.features)]
    notes = {
        "model": result.model_name,
        "candidates": len(result.leaderboard),
        "stopped": result.search_stopped,
        "members": {e.name: round(e.weight, 3) for e in result.leaderboard if e.weight > 0},
    }
    if spec.task == "regression":
        return Predictions(values=np.asarray(estimator.predict(X_test), dtype=float), notes=notes)
    labels = np.asarray(estimator.predict(X_test)).astype(str)
    proba = _proba_frame(estimator.predict_proba(X_test), list(result.classes))
    return Predictions(labels=labels, proba=proba, notes=notes)


def flaml(run: Run) -> Predictions:
    from flaml import AutoML

    spec = run.split.spec
    automl = AutoML()
    automl.fit(
        run.split.X_train,
        run.split.y_train,
        task="regression" if spec.task == "regression" else "classification",
        metric=PRIMARY[spec.task],
        time_budget=run.budget_s,
        seed=run.seed,
        n_jobs=-1,
        verbose=0,
    )
    if spec.task == "regression":
        return Predictions(values=np.asarray(automl.predict(run.split.X_test), dtype=float))
    labels = np.asarray(automl.predict(run.split.X_test)).astype(str)
    proba = _proba_frame(automl.predict_proba(run.split.X_test), list(automl.classes_))
    return Predictions(labels=labels, proba=proba)


def _minimal_prep(
    train: pd.DataFrame, test: pd.DataFrame, max_levels: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Dates become numbers, strings become categoricals with the training rows' levels.

    Beyond ``max_levels`` levels a string column becomes its level codes (unseen → missing).
    """
    train, test = train.copy(), test.copy()
    for column in train.columns:
        series = train[column]
        if pd.api.types.is_datetime64_any_dtype(series):
            for frame in (train, test):
                dates = frame.pop(column)
                frame[f"{column}_days"] = (dates - pd.Timestamp("1970-01-01")).dt.days
                frame[f"{column}_month"] = dates.dt.month
                frame[f"{column}_dayofyear"] = dates.dt.dayofyear
        elif pd.api.types.is_bool_dtype(series):
            train[column] = series.astype(int)
            test[column] = test[column].astype(int)
        elif not pd.api.types.is_numeric_dtype(series):
            levels = pd.Index(series.dropna().astype(str).unique()).sort_values()
            dtype = pd.CategoricalDtype(levels)
            for frame in (train, test):
                encoded = frame[column].astype("string").astype(dtype)
                too_many = max_levels is not None and len(levels) > max_levels
                frame[column] = encoded.cat.codes.replace(-1, np.nan) if too_many else encoded
    return train, test


def _defaults(run: Run, make: Callable[[str], Any], max_levels: int | None = None) -> Predictions:
    spec = run.split.spec
    X_train, X_test = _minimal_prep(run.split.X_train, run.split.X_test, max_levels)
    model = make(spec.task)
    if spec.task == "regression":
        model.fit(X_train, run.split.y_train)
        return Predictions(values=np.asarray(model.predict(X_test), dtype=float))
    classes = sorted(run.split.y_train.unique().tolist())
    codes = run.split.y_train.map({label: i for i, label in enumerate(classes)}).to_numpy()
    model.fit(X_train, codes)
    proba = np.asarray(model.predict_proba(X_test))
    labels = np.asarray(classes)[proba.argmax(axis=1)]
    return Predictions(labels=labels, proba=_proba_frame(proba, classes))


def xgboost(run: Run) -> Predictions:
    import xgboost as xgb

    def make(task: str) -> Any:
        if task == "regression":
            return xgb.XGBRegressor(enable_categorical=True, random_state=run.seed)
        return xgb.XGBClassifier(enable_categorical=True, random_state=run.seed)

    return _defaults(run, make)


def hgb(run: Run) -> Predictions:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    def make(task: str) -> Any:
        if task == "regression":
            return HistGradientBoostingRegressor(random_state=run.seed)
        return HistGradientBoostingClassifier(random_state=run.seed)

    # HistGradientBoosting's native categorical support stops at 255 levels.
    return _defaults(run, make, max_levels=255)


def served(run: Run) -> Predictions:
    from bench.automl.served import served as through_the_server

    return through_the_server(run)


CONTESTANTS: dict[str, Callable[[Run], Predictions]] = {
    "ours": ours,
    "served": served,
    "flaml": flaml,
    "xgboost": xgboost,
    "hgb": hgb,
}

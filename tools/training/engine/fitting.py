"""Fitting one family's model on the rows it is given, and nothing else.

Boosting stops early on an inner split of those rows only (the latest of them when the rows are
in time order), so a model is never tuned on the rows it is then scored on: validation folds
and the holdout stay unseen. Classes with a single row stay on the fitting side of that split.
A heavy-tailed regression target can be learnt through a Yeo-Johnson transform (a candidate's
``target_transform``), predictions coming back in the original scale.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

INNER_MIN_ROWS = 40  # fewer rows: no early stopping, the configured iterations run


def inner_split(
    y: np.ndarray, classification: bool, ordered: bool, seed: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Positions to fit on and positions to stop early on, within the rows of one fit.

    A tenth (15% under 1,000 rows) is kept aside: the last rows when they are in time order,
    else a random (stratified) share. A class with fewer than two rows stays on the fitting
    side, and the stopping side holds only classes the fitting side has.
    """
    n = len(y)
    if n < INNER_MIN_ROWS:
        return None
    n_stop = max(2, round((0.1 if n >= 1000 else 0.15) * n))
    positions = np.arange(n)
    if ordered:
        fit, stop = positions[:-n_stop], positions[-n_stop:]
        if classification:  # a class only the latest rows have is learnt, not stopped on
            known = np.isin(y[stop], y[fit])
            fit, stop = np.sort(np.concatenate([fit, stop[~known]])), stop[known]
        return (fit, stop) if len(stop) else None
    rng = np.random.default_rng(seed)
    if not classification:
        chosen = rng.permutation(n)
        return np.sort(chosen[n_stop:]), np.sort(chosen[:n_stop])
    picked: list[np.ndarray] = []
    labels, counts = np.unique(y, return_counts=True)
    for label, count in zip(labels, counts, strict=True):
        if count < 2:
            continue
        members = positions[y == label]
        take = min(count - 1, max(1, round(n_stop * count / n)))
        picked.append(rng.choice(members, size=take, replace=False))
    held = np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=int)
    if len(held) == 0:
        return None
    return np.setdiff1d(positions, held), held


def stopping_rows_last(
    X: np.ndarray, y: np.ndarray, weight: np.ndarray | None, stop: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, tuple[slice, slice]]:
    """The rows at positions ``stop`` moved to the end of ``X`` in place (each swapped with a
    row the end held), and the split as two slices: the rows to fit on and the rows to stop
    early on are then views of X, not copies of it (a fit on 67.5k rows x 50 columns copied
    27 MB). ``y`` and ``weight`` are copied, then reordered alike."""
    n, k = len(y), len(stop)
    tail = np.arange(n - k, n)
    leave = np.setdiff1d(stop, tail, assume_unique=True)  # stopping rows not yet at the end
    enter = np.setdiff1d(tail, stop, assume_unique=True)  # fitting rows at the end
    y = y.copy()
    weight = weight.copy() if weight is not None else None
    for values in (X, y, weight):
        if values is not None:
            values[leave], values[enter] = values[enter], values[leave]
    return X, y, weight, (slice(0, n - k), slice(n - k, n))


def fit_model(
    name: str,
    model: Any,
    X: Any,
    y: np.ndarray,
    weight: np.ndarray | None,
    deadline: float | None,
    *,
    classification: bool,
    ordered: bool = False,
    seed: int = 0,
    target_transform: bool = False,
    owned: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Fit ``model`` on (X, y); returns the fitted model (wrapped when the target is
    transformed) and facts worth keeping (e.g. the best iteration, for a refit).

    ``owned``: X is this fit's own array, whose rows it may reorder (see ``stopping_rows_last``).
    """
    transformer = None
    if target_transform and not classification:
        from sklearn.preprocessing import PowerTransformer

        transformer = PowerTransformer(method="yeo-johnson")
        y = transformer.fit_transform(np.asarray(y, dtype=float).reshape(-1, 1))[:, 0]
    split: tuple[Any, Any] | None = (
        inner_split(y, classification, ordered, seed) if _stops_early(name, model) else None
    )
    if split is not None and owned and isinstance(X, np.ndarray):
        X, y, weight, split = stopping_rows_last(X, y, weight, split[1])
    facts = _fit(name, model, X, y, weight, split, deadline)
    if transformer is None:
        return model, facts
    from mltrainer.tools.training.engine.custom import TransformedTarget

    return TransformedTarget(model, transformer, float(np.min(y)), float(np.max(y))), facts


def _stops_early(name: str, model: Any) -> bool:
    if name == "xgboost":
        return bool(model.early_stopping_rounds)
    if name == "hist_gradient_boosting":
        return model.early_stopping is True
    return False


def _fit(
    name: str,
    model: Any,
    X: Any,
    y: np.ndarray,
    weight: np.ndarray | None,
    split: tuple[Any, Any] | None,
    deadline: float | None,
) -> dict[str, Any]:
    if name == "xgboost":
        if split is None:
            model.fit(X, y, sample_weight=weight, deadline=deadline)
        else:
            fit, stop = split
            model.fit(
                X[fit],
                y[fit],
                sample_weight=weight[fit] if weight is not None else None,
                eval_set=(X[stop], y[stop]),
                deadline=deadline,
            )
        return {"n_estimators": model.best_iteration_}
    if name in ("random_forest", "extra_trees"):
        return _fit_forest(model, X, y, weight, deadline)
    if name == "hist_gradient_boosting":
        return _fit_hist_gradient_boosting(model, X, y, weight, split, deadline)
    if name == "knn" or weight is None:
        model.fit(X, y)
    else:
        model.fit(X, y, sample_weight=weight)
    return {}


def _fit_hist_gradient_boosting(
    model: Any,
    X: Any,
    y: np.ndarray,
    weight: np.ndarray | None,
    split: tuple[Any, Any] | None,
    deadline: float | None,
) -> dict[str, Any]:
    """Boost in chunks of about a second (warm start: the same model as one fit), stopping at
    early stopping (on the inner split), ``max_iter`` or the deadline, whichever comes first."""
    extra: dict[str, Any] = {}
    if split is not None:
        fit, stop = split
        extra = {"X_val": X[stop], "y_val": y[stop]}
        if weight is not None:
            extra["sample_weight_val"] = weight[stop]
        X, y, weight = X[fit], y[fit], (weight[fit] if weight is not None else None)
    elif model.early_stopping is True:
        model.set_params(early_stopping=False)  # too few rows to stop on
    target = int(model.max_iter)
    step = min(target, 10)
    model.set_params(max_iter=step, warm_start=True)
    while True:
        began = time.monotonic()
        before = int(getattr(model, "n_iter_", 0))
        model.fit(X, y, sample_weight=weight, **extra)
        done = int(model.n_iter_)
        if done < model.max_iter or done >= target:  # stopped early, or all iterations run
            break
        now = time.monotonic()
        if deadline is not None and now > deadline:
            break
        per_iteration = (now - began) / max(1, done - before)
        step = int(np.clip(1.0 / max(per_iteration, 1e-6), 10, 200))
        if deadline is not None:
            step = max(1, min(step, int((deadline - now) / max(per_iteration, 1e-6))))
        model.set_params(max_iter=min(target, done + step))
    model.set_params(warm_start=False, max_iter=target)
    return {"n_iter": int(model.n_iter_)}


def _fit_forest(
    model: Any, X: Any, y: np.ndarray, weight: np.ndarray | None, deadline: float | None
) -> dict[str, Any]:
    """Grow the forest in chunks, stopping at the deadline with the trees grown so far."""
    target = int(model.n_estimators)
    grown = min(50, target)
    model.set_params(n_estimators=grown, warm_start=True)
    while True:
        model.fit(X, y, sample_weight=weight)
        if grown >= target or (deadline is not None and time.monotonic() > deadline):
            break
        grown = min(target, grown + 50)
        model.set_params(n_estimators=grown)
    model.set_params(warm_start=False)
    return {"n_estimators": grown}


def predict(model: Any, X: Any, classification: bool) -> np.ndarray:
    return np.asarray(model.predict_proba(X) if classification else model.predict(X), dtype=float)

"""Graded leakage: how well each column alone predicts the target, out of fold.

Every usable column gets a one-column model scored on rows it was not fitted on (3 folds): a
small decision tree for numbers, a smoothed value → target lookup for categories. The score is
the task's natural measure -- ROC AUC (binary), balanced accuracy (multiclass), R² (regression)
-- so a copy of the target, a noisy copy, an encoding of it and a fact recorded only after the
outcome all score near 1, while an honest strong feature rarely does. High evidence (>= 0.99)
drops the column; medium (>= 0.95) keeps it and says so with the numbers. A value that occurs
(almost) only with one class is named in the message (conditional purity).

Cheap on wide and large data: a sample of rows, a cap on columns, a time budget, and the
columns judged on several threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from mltrainer.tools.machine import n_workers
from mltrainer.tools.profiling.models import (
    ColumnProfile,
    ProfileWarning,
    Severity,
    TargetAnalysis,
)
from mltrainer.tools.scores import balanced_accuracy, binary_auc

if TYPE_CHECKING:
    import pandas as pd

HIGH = 0.99
MEDIUM = 0.95
SAMPLE_ROWS = 5000
MAX_COLUMNS = 200
BUDGET_S = 6.0
MIN_ROWS = 30
PURE = 0.98  # a value whose rows are (almost) all of one class
SCORED_KINDS = ("numeric", "categorical", "boolean")
MAX_THREADS = 4  # columns judged side by side, at most one per core this job may use
_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


@dataclass
class Target:
    """The target of the leakage checks: encoded once for every column."""

    task: str  # binary | multiclass | regression
    values: np.ndarray  # class codes 0..k-1, or numbers
    labels: list[str]
    folds: list[tuple[np.ndarray, np.ndarray]]

    @property
    def measure(self) -> str:
        return {"binary": "roc_auc", "multiclass": "balanced_accuracy"}.get(self.task, "r2")


def make_target(y: pd.Series, task: str, seed: int) -> Target | None:
    """The encoded target and its folds; None when it is too small or too uniform to judge."""
    import pandas as pd
    from sklearn.model_selection import KFold, StratifiedKFold

    if task in ("binary", "multiclass", "text_classification"):
        codes, uniques = pd.factorize(y.astype("string"), sort=True)
        counts = np.bincount(codes)
        if len(counts) < 2 or counts.min() < 3 or np.sort(counts)[-2] < 10:
            return None
        kind = "binary" if len(counts) == 2 else "multiclass"
        splitter = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
        folds = list(splitter.split(codes, codes))
        return Target(kind, codes.astype(int), [str(u) for u in uniques], folds)
    values = pd.to_numeric(y, errors="coerce").to_numpy(dtype=float)
    if np.isnan(values).any() or np.unique(values).size < 3:
        return None
    folds = list(KFold(n_splits=3, shuffle=True, random_state=seed).split(values))
    return Target("regression", values, [], folds)


def tree_oof(X: np.ndarray, target: Target, seed: int) -> np.ndarray:
    """Out-of-fold predictions of a small tree on ``X`` (one column, or the parts of a date)."""
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    classes = len(target.labels)
    oof = np.zeros((len(X), classes)) if classes else np.zeros(len(X))
    leaf = max(3, len(X) // 200)
    X = np.asarray(X, dtype=np.float32)  # what the trees fit on: converted once, not per fold
    for train, valid in target.folds:
        model = (
            DecisionTreeClassifier(max_leaf_nodes=32, min_samples_leaf=leaf, random_state=seed)
            if classes
            else DecisionTreeRegressor(max_leaf_nodes=32, min_samples_leaf=leaf, random_state=seed)
        )
        model.fit(X[train], target.values[train])
        if classes:
            oof[np.ix_(valid, model.classes_.astype(int))] = model.predict_proba(X[valid])
        else:
            oof[valid] = model.predict(X[valid])
    return oof


def out_of_fold(x: pd.Series, numeric: bool, target: Target, seed: int) -> np.ndarray:
    """Predictions of a one-column model for every row, each from folds that did not see it."""
    import pandas as pd

    if numeric:
        return tree_oof(x.to_numpy(dtype=float).reshape(-1, 1), target, seed)
    classes = len(target.labels)
    oof = np.zeros((len(x), classes)) if classes else np.zeros(len(x))
    codes = pd.factorize(x.astype("string").fillna("<NA>"))[0]
    for train, valid in target.folds:
        oof[valid] = _lookup(codes[train], target.values[train], codes[valid], classes)
    return oof


def _lookup(train_codes: np.ndarray, y: np.ndarray, codes: np.ndarray, classes: int) -> np.ndarray:
    """Each value's target mean (class shares) in the training part, shrunk towards the prior
    by one row's weight; a value never seen there gets the prior."""
    width = int(max(train_codes.max(initial=0), codes.max(initial=0))) + 1
    counts = np.bincount(train_codes, minlength=width).astype(float)[:, None]
    if classes:
        sums = np.zeros((width, classes))
        np.add.at(sums, (train_codes, y.astype(int)), 1.0)
        prior = np.bincount(y.astype(int), minlength=classes) / len(y)
    else:
        sums = np.bincount(train_codes, weights=y, minlength=width).astype(float)[:, None]
        prior = np.array([y.mean()])
    table = (sums + prior) / (counts + 1.0)
    out = table[codes]
    return out if classes else out[:, 0]


def evidence(oof: np.ndarray, target: Target) -> float:
    """How well the one-column model did, in the target's measure."""
    y = target.values
    if target.task == "binary":
        return binary_auc(y == 1, oof[:, 1])
    if target.task == "multiclass":
        prior = np.bincount(y.astype(int), minlength=oof.shape[1]) / len(y)
        return balanced_accuracy(y, np.argmax(oof / prior, axis=1))
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - oof) ** 2)) / total if total > 0 else 0.0


def monotone(x: pd.Series, target: Target) -> float:
    """The score of the column itself as the prediction, in either direction: a model with no
    parameter to overfit (a straight line for a number target), so it needs no folds."""
    import pandas as pd

    values = pd.to_numeric(x, errors="coerce").to_numpy(dtype=float)
    known = ~np.isnan(values)
    if known.sum() < MIN_ROWS or np.nanstd(values) == 0:
        return 0.0
    if target.task == "binary":
        y = target.values[known]
        if len(np.unique(y)) < 2:
            return 0.0
        auc = binary_auc(y == 1, values[known])
        return max(auc, 1.0 - auc)
    if target.task == "regression":
        return float(np.corrcoef(values[known], target.values[known])[0, 1]) ** 2
    return 0.0


def pure_value(x: pd.Series, target: Target) -> str | None:
    """The largest value of a low-cardinality column that occurs (almost) only with one class."""
    import pandas as pd

    if not target.labels or x.nunique(dropna=False) > 20:
        return None
    pairs = pd.DataFrame({"x": x.astype("string").fillna("<missing>"), "y": target.values})
    table = pd.crosstab(pairs["x"], pairs["y"])
    best: tuple[float, str] | None = None
    for value, row in table.iterrows():
        total = float(row.sum())
        top = int(row.to_numpy().argmax())
        purity = float(row.iloc[top]) / total
        label = target.labels[int(table.columns[top])]
        coverage = float(row.iloc[top]) / float(table.iloc[:, top].sum())
        if purity >= PURE and coverage >= 0.2 and (best is None or coverage > best[0]):
            best = (
                coverage,
                f"the value {str(value)!r} occurs with class {label!r} in {purity:.0%} of its "
                f"{int(total)} rows ({coverage:.0%} of that class)",
            )
    return best[1] if best else None


def leakage_warnings(
    frame: pd.DataFrame,
    target: TargetAnalysis,
    columns: dict[str, ColumnProfile],
    seed: int = 0,
) -> list[ProfileWarning]:
    """Graded findings for the columns that predict the target (almost) by themselves."""
    data = frame.loc[frame[target.column].notna()]
    if len(data) < MIN_ROWS:
        return []
    if len(data) > SAMPLE_ROWS:
        data = data.sample(n=SAMPLE_ROWS, random_state=seed)
    data = data.reset_index(drop=True)
    encoded = make_target(data[target.column], target.task, seed)
    if encoded is None:
        return []
    names = [
        name
        for name, column in columns.items()
        if name != target.column and column.kind in SCORED_KINDS
    ]
    deadline = time.monotonic() + BUDGET_S

    def judged(name_and_values: tuple[str, pd.Series]) -> ProfileWarning | None:
        name, values = name_and_values
        if time.monotonic() > deadline:
            return None
        return judge_column(values, columns[name], encoded, target.column, seed)

    jobs = [(name, data[name]) for name in names[:MAX_COLUMNS]]
    return [found for found in on_threads(judged, jobs) if found is not None]


def on_threads(fn: Callable[[_Item], _Result], items: list[_Item]) -> list[_Result]:
    """``fn`` over ``items`` on up to MAX_THREADS threads, no more than the job's cores, results
    in the items' order. The trees and most of numpy and pandas release the GIL, so the columns'
    checks overlap."""
    threads = min(MAX_THREADS, n_workers(), len(items))
    if threads < 2:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(fn, items))


def judge_column(
    x: pd.Series, column: ColumnProfile, target: Target, target_name: str, seed: int
) -> ProfileWarning | None:
    import pandas as pd

    numeric = pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x)
    if numeric and x.nunique() > 20:
        score = max(evidence(out_of_fold(x, True, target, seed), target), monotone(x, target))
    else:
        score = evidence(out_of_fold(x, False, target, seed), target)
    score = round(score, 3)  # graded as shown: the folds' noise is larger than this anyway
    if score < MEDIUM:
        return None
    return leak_warning(column.name, score, target, pure_value(x, target), target_name)


def leak_warning(
    name: str, score: float, target: Target, purity: str | None, target_name: str
) -> ProfileWarning:
    measure = {"roc_auc": "AUC", "balanced_accuracy": "balanced accuracy", "r2": "R²"}
    how = (
        f"{measure[target.measure]} {score:.3f} from this column alone, scored on rows nothing "
        "was fitted on"
    )
    detail = f"; {purity}" if purity else ""
    derived = target_name.lower() in name.lower() and len(target_name) >= 3
    named = " Its name is derived from the target's." if derived else ""
    if score >= HIGH:
        message = (
            f"'{name}' predicts the target almost perfectly by itself ({how}{detail}): it is "
            f"probably derived from the target or known only after it, so it is not used.{named} "
            f"If it is truly known when predictions are made, pass keep_columns=['{name}']."
        )
        severity: Severity = "high"
    else:
        message = (
            f"'{name}' alone predicts the target suspiciously well ({how}{detail}).{named} It is "
            "kept: if it is recorded only after the outcome it would not exist at prediction "
            f"time, so drop it with exclude_columns=['{name}']."
        )
        severity = "medium"
    return ProfileWarning(
        kind="leakage",
        column=name,
        severity=severity,
        message=message,
        evidence=round(score, 4),
        measure=target.measure,
    )

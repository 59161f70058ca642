"""The held-out test split and the cross-validation folds a plan asks for.

Rows of rare classes (``always_train``: too few to stratify or to score) are in the training
rows of the holdout split and of every fold, never held out; classes too small for the number
of folds are stratified together as one group, so the folds are never cut to fit them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mltrainer.tools.training.plan import ValidationPlan


def holdout_split(
    n: int,
    validation: ValidationPlan,
    y: np.ndarray | None,
    groups: np.ndarray | None,
    order: np.ndarray | None,
    seed: int,
    always_train: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row positions; the test rows stay untouched until the end."""
    if always_train is not None and always_train.any():
        kept, sub_order = _kept(always_train, order)
        train, test = holdout_split(
            len(kept),
            validation,
            y[kept] if y is not None else None,
            groups[kept] if groups is not None else None,
            sub_order,
            seed,
        )
        return np.sort(np.concatenate([kept[train], np.flatnonzero(always_train)])), kept[test]
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    positions = np.arange(n)
    n_test = max(1, round(validation.test_fraction * n))
    if order is not None:  # time-ordered: the test rows are the latest ones
        ranked = positions[order]
        return np.sort(ranked[:-n_test]), np.sort(ranked[-n_test:])
    if groups is not None:
        splitter = GroupShuffleSplit(
            n_splits=1, test_size=validation.test_fraction, random_state=seed
        )
        train, test = next(splitter.split(positions, groups=groups))
        return train, test
    stratify = None
    if y is not None:
        _, counts = np.unique(y, return_counts=True)
        if counts.min() >= 2 and len(counts) <= n_test:
            stratify = y
    train, test = train_test_split(
        positions, test_size=n_test, random_state=seed, stratify=stratify
    )
    return np.sort(train), np.sort(test)


def _kept(
    always_train: np.ndarray, order: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The rows that may be held out, and their time order as positions among them."""
    kept = np.flatnonzero(~always_train)
    rank = np.empty(len(always_train), dtype=int)
    rank[kept] = np.arange(len(kept))
    return kept, (rank[order[~always_train[order]]] if order is not None else None)


def cv_splits(
    validation: ValidationPlan,
    y: np.ndarray,
    classification: bool,
    groups: np.ndarray | None,
    order: np.ndarray | None,
    seed: int,
    always_train: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds over the training rows (positions into them)."""
    if always_train is None or not always_train.any():
        return _folds(validation, y, classification, groups, order, seed)
    kept, sub_order = _kept(always_train, order)
    rare = np.flatnonzero(always_train)
    folds = _folds(
        validation,
        y[kept],
        classification,
        groups[kept] if groups is not None else None,
        sub_order,
        seed,
    )
    time_rank = None
    if order is not None:  # training rows stay in time order (early stopping uses the latest)
        time_rank = np.empty(len(y), dtype=int)
        time_rank[order] = np.arange(len(y))
    out = []
    for train, valid in folds:
        train = np.concatenate([kept[train], rare])
        if time_rank is not None:
            train = train[np.argsort(time_rank[train], kind="stable")]
        out.append((train, kept[valid]))
    return out


def _folds(
    validation: ValidationPlan,
    y: np.ndarray,
    classification: bool,
    groups: np.ndarray | None,
    order: np.ndarray | None,
    seed: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    import warnings

    from sklearn.model_selection import (
        GroupKFold,
        KFold,
        RepeatedKFold,
        RepeatedStratifiedKFold,
        StratifiedKFold,
        TimeSeriesSplit,
        train_test_split,
    )

    n = len(y)
    positions = np.arange(n)
    kind = validation.kind
    k = validation.n_splits
    if kind == "time_series" and order is not None:
        splitter: Any = TimeSeriesSplit(n_splits=max(2, min(k, n - 1)))
        return [(order[tr], order[va]) for tr, va in splitter.split(positions)]
    if kind == "group_kfold" and groups is not None:
        n_groups = len(np.unique(groups))
        splitter = GroupKFold(n_splits=max(2, min(k, n_groups)))
        return list(splitter.split(positions, y, groups))
    strata = _strata(y, max(k, 2)) if classification else None
    if kind == "holdout" or k < 2:
        train, valid = train_test_split(
            positions, test_size=0.2, random_state=seed, stratify=strata
        )
        return [(np.sort(train), np.sort(valid))]
    k = max(2, min(k, n))  # never more folds than rows
    if kind == "repeated_kfold":
        splitter = (
            RepeatedStratifiedKFold(n_splits=k, n_repeats=validation.n_repeats, random_state=seed)
            if strata is not None
            else RepeatedKFold(n_splits=k, n_repeats=validation.n_repeats, random_state=seed)
        )
    elif strata is not None:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class": on purpose
        return list(splitter.split(positions, strata if strata is not None else y))


def _strata(y: np.ndarray, k: int) -> np.ndarray | None:
    """What folds are stratified on: the classes, those with fewer than ``k`` rows as one
    group (so the number of folds is never cut to fit them); None when nothing can be."""
    labels, counts = np.unique(y, return_counts=True)
    small = set(labels[counts < k].tolist())
    if not small:
        return y
    strata = np.where(np.isin(y, list(small)), -1, y)
    if (strata == -1).sum() < 2:  # a single row alone cannot be stratified: with the largest
        strata[strata == -1] = labels[np.argmax(counts)]
    return strata if len(np.unique(strata)) > 1 else None

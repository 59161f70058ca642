"""The held-out test split and the cross-validation folds a plan asks for."""

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
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row positions; the test rows stay untouched until the end."""
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


def cv_splits(
    validation: ValidationPlan,
    y: np.ndarray,
    classification: bool,
    groups: np.ndarray | None,
    order: np.ndarray | None,
    seed: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds over the training rows (positions into them)."""
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
    min_class = int(np.unique(y, return_counts=True)[1].min()) if classification else n
    stratify = classification and min_class >= 2
    if kind == "time_series" and order is not None:
        splitter: Any = TimeSeriesSplit(n_splits=max(2, min(k, n - 1)))
        return [(order[tr], order[va]) for tr, va in splitter.split(positions)]
    if kind == "group_kfold" and groups is not None:
        n_groups = len(np.unique(groups))
        splitter = GroupKFold(n_splits=max(2, min(k, n_groups)))
        return list(splitter.split(positions, y, groups))
    if kind == "holdout" or k < 2:
        train, valid = train_test_split(
            positions, test_size=0.2, random_state=seed, stratify=y if stratify else None
        )
        return [(np.sort(train), np.sort(valid))]
    k = min(k, min_class) if stratify else k
    k = max(2, min(k, n))  # never more folds than rows
    if kind == "repeated_kfold":
        splitter = (
            RepeatedStratifiedKFold(n_splits=k, n_repeats=validation.n_repeats, random_state=seed)
            if stratify
            else RepeatedKFold(n_splits=k, n_repeats=validation.n_repeats, random_state=seed)
        )
    elif stratify:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(positions, y))

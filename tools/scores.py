"""Two scores computed in hot loops, exactly as scikit-learn defines them, without its checks.

The profile's judge scores a one-column model per column and per time test, and the engine's
ensemble scores hundreds of blends: scikit-learn's ``roc_auc_score`` validates and re-derives
the target's type on every call (7 ms on 5,000 rows, 39 ms on 67,500), this one ranks once
(1 ms and 10 ms) and gives the same value. Callers pass arrays they have already checked.
"""

from __future__ import annotations

import numpy as np


def binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for the rows where ``positive`` is true: the Mann-Whitney statistic,
    ties counted half (as scikit-learn's trapezoids count them). NaN when one class is missing,
    where scikit-learn returns NaN too (with a warning)."""
    from scipy.stats import rankdata

    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The mean recall over the classes present in ``y_true`` (a predicted class that never
    occurs counts only as a miss, as in scikit-learn)."""
    classes, codes = np.unique(y_true, return_inverse=True)
    hits = np.bincount(
        codes, weights=np.asarray(y_pred) == np.asarray(y_true), minlength=len(classes)
    )
    return float(np.mean(hits / np.bincount(codes, minlength=len(classes))))

"""scikit-learn's HistGradientBoosting on columns whose categories are already codes.

The preprocessing gives the trees their categorical columns first, as ordinal codes (0, 1, ...,
missing as NaN). Told which columns are categorical, scikit-learn's estimator encodes them
again, with a ColumnTransformer of its own: at every fit (every warm-start chunk) it copies the
rows twice, once to float64 and once to put the encoded columns beside the rest (50 MB for
67.5k rows x 50 columns), and at every predict once more. These classes take the codes as they
are: the rows are copied at most once, to float64 (not at all when they are float64 already),
and the trees, the bins and the predictions are the same as scikit-learn's own (its encoder
only renumbers the codes it saw in order, and treats any other value as missing, as these
do).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

try:  # scikit-learn's own checks, where this version has them (1.6 and later)
    from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import (
        _check_categorical_features,
    )
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - older scikit-learn: its own encoding runs
    _check_categorical_features = validate_data = None


class _CodedCategories:
    """Replaces HistGradientBoosting's ``_preprocess_X`` when the categorical columns lead and
    hold codes a bitset can hold (0 to ``max_bins`` - 1); otherwise scikit-learn's runs."""

    categorical_features: Any  # the estimator's parameters
    max_bins: int

    def _preprocess_X(self, X: Any, *, reset: bool) -> Any:
        base: Any = super()
        if not reset:
            fitted = getattr(self, "known_codes_", None)
            if fitted is None:
                return base._preprocess_X(X, reset=False)
            X = validate_data(self, X, reset=False, dtype=[np.float64], ensure_all_finite=False)
            return _unknown_as_missing(X, fitted)
        self.known_codes_: list[np.ndarray] | None = None
        if validate_data is None or not isinstance(X, np.ndarray) or X.ndim != 2:
            return base._preprocess_X(X, reset=True)
        categorical = _check_categorical_features(X, self.categorical_features)
        codes = _known_codes(X, categorical, self.max_bins)
        if codes is None:
            return base._preprocess_X(X, reset=True)
        X = validate_data(self, X, reset=True, dtype=[np.float64], ensure_all_finite=False)
        self.is_categorical_ = categorical
        self._preprocessor = None
        self._is_categorical_remapped = categorical
        self.known_codes_ = codes
        known: list[np.ndarray | None] = [None] * X.shape[1]
        known[: len(codes)] = codes
        return X, known


def _known_codes(
    X: np.ndarray, categorical: np.ndarray | None, max_bins: int
) -> list[np.ndarray] | None:
    """The codes each leading categorical column holds (missing values aside), or None when
    the columns are not coded so (scikit-learn's own encoding runs then)."""
    if categorical is None or not categorical.any():
        return None
    leading = int(categorical.sum())
    if not categorical[:leading].all():
        return None
    known = []
    for column in range(leading):
        values = X[:, column]
        codes = np.unique(values[~np.isnan(values)])
        if len(codes) and (
            codes[0] < 0 or codes[-1] >= max_bins or not np.array_equal(codes, np.floor(codes))
        ):
            return None
        known.append(codes.astype(np.float64))
    return known


def _unknown_as_missing(X: np.ndarray, known: list[np.ndarray]) -> np.ndarray:
    """``X`` with every categorical value the fit never saw as NaN (copied only if any)."""
    unknown = [
        (column, ~np.isin(X[:, column], codes) & ~np.isnan(X[:, column]))
        for column, codes in enumerate(known)
    ]
    if not any(mask.any() for _, mask in unknown):
        return X
    X = X.copy()
    for column, mask in unknown:
        X[mask, column] = np.nan
    return X


class HGBClassifierModel(_CodedCategories, HistGradientBoostingClassifier):
    pass


class HGBRegressorModel(_CodedCategories, HistGradientBoostingRegressor):
    pass

"""A regressor that learnt a transformed target, predicting in the original scale."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator


class TransformedTarget(BaseEstimator):
    """``regressor`` fitted on ``transformer`` (a fitted Yeo-Johnson PowerTransformer) of the
    target; predictions are clipped to the transformed range seen in training (the inverse is
    undefined far outside it) and mapped back."""

    def __init__(
        self,
        regressor: Any = None,
        transformer: Any = None,
        low: float = -np.inf,
        high: float = np.inf,
    ) -> None:
        self.regressor = regressor
        self.transformer = transformer
        self.low = low
        self.high = high

    def fit(self, X: Any = None, y: Any = None) -> TransformedTarget:
        return self  # built from a fitted regressor and transformer

    def __sklearn_is_fitted__(self) -> bool:
        return True  # so a Pipeline ending in it predicts

    def predict(self, X: Any) -> np.ndarray:
        z = np.asarray(self.regressor.predict(X), dtype=float)
        span = self.high - self.low
        z = np.clip(z, self.low - 0.1 * span, self.high + 0.1 * span)
        return np.asarray(self.transformer.inverse_transform(z.reshape(-1, 1)), dtype=float)[:, 0]

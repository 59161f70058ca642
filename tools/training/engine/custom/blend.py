"""The final tabular model: a weighted blend of bags of fitted pipelines."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator


class BlendModel(BaseEstimator):
    """The final model: a weighted blend of members, each a bag of fitted pipelines.

    Takes the raw feature frame; ``classes_`` holds the original labels (classification), and
    ``predict`` returns them.
    """

    def __init__(
        self,
        task: str,
        features: list[str],
        members: list[list[Any]],
        weights: list[float],
        classes: list[Any] | None = None,
        positive_index: int = 1,
    ) -> None:
        self.task = task
        self.features = features
        self.members = members
        self.weights = weights
        self.classes = classes
        self.positive_index = positive_index

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.classes if self.classes is not None else [])

    def fit(self, X: Any = None, y: Any = None) -> BlendModel:
        return self  # already fitted: built from fitted members

    def _frame(self, X: Any) -> pd.DataFrame:
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X, columns=self.features)
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"missing feature columns: {missing}")
        return frame[self.features]

    def _blend(self, X: Any, proba: bool) -> np.ndarray:
        frame = self._frame(X)
        total: np.ndarray | None = None
        weight_sum = float(sum(self.weights))
        for weight, bag in zip(self.weights, self.members, strict=True):
            if weight <= 0:
                continue
            preds = [
                (np.asarray(p.predict_proba(frame)) if proba else np.asarray(p.predict(frame)))
                for p in bag
            ]
            part = np.mean(preds, axis=0) * (weight / weight_sum)
            total = part if total is None else total + part
        assert total is not None
        return total

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.task not in ("binary", "multiclass"):
            raise AttributeError("predict_proba is only available for classification")
        return self._blend(X, proba=True)

    def predict(self, X: Any) -> np.ndarray:
        if self.task in ("binary", "multiclass"):
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return self._blend(X, proba=False)

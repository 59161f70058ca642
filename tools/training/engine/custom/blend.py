"""The final tabular model: a weighted blend of bags of fitted pipelines."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator


def calibrate_proba(proba: np.ndarray, calibration: list[float] | None) -> np.ndarray:
    """Probabilities through a calibration fitted on out-of-fold predictions: two numbers
    (a, b) for two classes, p = sigmoid(a * logit(p) + b); one (s) for more, p ~ p ** s
    (temperature). Both keep the order of the scores, so ranking metrics do not change."""
    if not calibration:
        return proba
    clipped = np.clip(np.asarray(proba, dtype=float), 1e-7, 1.0)
    if len(calibration) == 2 and clipped.shape[1] == 2:
        a, b = calibration
        logit = np.log(clipped[:, 1]) - np.log(np.clip(clipped[:, 0], 1e-7, 1.0))
        positive = 1.0 / (1.0 + np.exp(-(a * logit + b)))
        return np.column_stack([1.0 - positive, positive])
    scaled = np.exp(calibration[0] * np.log(clipped))
    return scaled / scaled.sum(axis=1, keepdims=True)


class BlendModel(BaseEstimator):
    """The final model: a weighted blend of members, each a bag of fitted pipelines.

    Takes the raw feature frame; ``classes_`` holds the original labels (classification), and
    ``predict`` returns them. ``calibration`` (see :func:`calibrate_proba`) adjusts the
    probabilities; ``class_weights`` the decision: the label is the class with the largest
    weight x probability (for two classes, a threshold on the positive class's probability).
    """

    def __init__(
        self,
        task: str,
        features: list[str],
        members: list[list[Any]],
        weights: list[float],
        classes: list[Any] | None = None,
        positive_index: int = 1,
        calibration: list[float] | None = None,
        class_weights: list[float] | None = None,
    ) -> None:
        self.task = task
        self.features = features
        self.members = members
        self.weights = weights
        self.classes = classes
        self.positive_index = positive_index
        self.calibration = calibration
        self.class_weights = class_weights

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
        # models saved before calibration existed have no such attribute
        return calibrate_proba(self._blend(X, proba=True), getattr(self, "calibration", None))

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """The labels for these (calibrated) probabilities, by the model's decision rule."""
        weights = getattr(self, "class_weights", None)
        scored = proba * np.asarray(weights) if weights else proba
        return self.classes_[np.argmax(scored, axis=1)]

    def predict(self, X: Any) -> np.ndarray:
        if self.task in ("binary", "multiclass"):
            return self.decide(self.predict_proba(X))
        return self._blend(X, proba=False)

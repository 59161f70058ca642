"""How a contestant's test predictions are scored: one primary metric per task, plus companions.

Primary metrics (all higher-is-better, so a mean over datasets means something):
binary → ROC AUC of the positive class; multiclass → accuracy; regression → R².
Companions are reported beside them: log loss for classification, RMSE and MAE for regression.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PRIMARY = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}
# Two scores closer than this count as a tie (e.g. one test row of accuracy on a tiny set is not).
TIE_TOLERANCE = 0.001


@dataclass
class Predictions:
    """Test-set predictions: labels and class probabilities, or values for regression."""

    labels: np.ndarray | None = None
    proba: pd.DataFrame | None = None  # one column per class label (strings)
    values: np.ndarray | None = None
    notes: dict | None = None  # what the contestant chose (e.g. our ensemble's members)


def score(task: str, y_true: pd.Series, pred: Predictions, positive_class: str | None) -> dict:
    from sklearn import metrics

    if task == "regression":
        assert pred.values is not None
        values = np.asarray(pred.values, dtype=float)
        return {
            "r2": float(metrics.r2_score(y_true, values)),
            "rmse": float(np.sqrt(metrics.mean_squared_error(y_true, values))),
            "mae": float(metrics.mean_absolute_error(y_true, values)),
        }
    assert pred.labels is not None and pred.proba is not None
    classes = sorted(y_true.unique().tolist())
    proba = pred.proba.reindex(columns=classes, fill_value=0.0).to_numpy(dtype=float)
    proba = np.clip(proba, 1e-15, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    result = {
        "accuracy": float(metrics.accuracy_score(y_true, pred.labels.astype(str))),
        "balanced_accuracy": float(
            metrics.balanced_accuracy_score(y_true, pred.labels.astype(str))
        ),
        "log_loss": float(metrics.log_loss(y_true, proba, labels=classes)),
    }
    if task == "binary":
        positive = positive_class if positive_class is not None else classes[1]
        column = classes.index(positive)
        result["roc_auc"] = float(metrics.roc_auc_score(y_true == positive, proba[:, column]))
    return result


def compare(ours: float, theirs: float) -> str:
    """'win', 'tie' or 'loss' for a higher-is-better primary score."""
    if abs(ours - theirs) <= TIE_TOLERANCE:
        return "tie"
    return "win" if ours > theirs else "loss"

"""Metrics by name, computed from labels (encoded 0..k-1) and probabilities or values.

Classification predictions are always probability matrices (n, k); regression predictions are
vectors. ``utility`` turns any metric into greater-is-better for the search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.scores import balanced_accuracy, binary_auc

# The names are declared with the rest of the request's vocabulary, so that the server checks
# a request's metric without importing the engine.
from mltrainer.tools.training.request import (
    CLASSIFICATION_METRICS,
    DEFAULT_METRIC,
    REGRESSION_METRICS,
)
from mltrainer.tools.training.request import METRIC_ALIASES as ALIASES


@dataclass(frozen=True)
class MetricContext:
    n_classes: int = 0
    positive_index: int = 1
    # The decision rule of label metrics: argmax of weight x probability (None: argmax).
    class_weights: tuple[float, ...] | None = None


def _labels(pred: np.ndarray, ctx: MetricContext) -> np.ndarray:
    if ctx.class_weights is not None:
        return np.argmax(pred * np.asarray(ctx.class_weights), axis=1)
    return np.argmax(pred, axis=1)


def _roc_auc(y: np.ndarray, pred: np.ndarray, ctx: MetricContext) -> float:
    if ctx.n_classes == 2:
        return binary_auc(y == ctx.positive_index, pred[:, ctx.positive_index])
    from sklearn.metrics import roc_auc_score

    present = np.unique(y)
    if len(present) < ctx.n_classes:  # a fold without some class: score on the present ones
        sub = pred[:, present]
        sub = sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
        if len(present) == 2:
            return binary_auc(y == present[1], sub[:, 1])
        return float(roc_auc_score(y, sub, multi_class="ovr", labels=present))
    return float(roc_auc_score(y, pred, multi_class="ovr", labels=np.arange(ctx.n_classes)))


def _log_loss(y: np.ndarray, pred: np.ndarray, ctx: MetricContext) -> float:
    clipped = np.clip(pred, 1e-15, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(clipped[np.arange(len(y)), y])))


def _accuracy(y: np.ndarray, pred: np.ndarray, ctx: MetricContext) -> float:
    return float(np.mean(_labels(pred, ctx) == y))


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray, ctx: MetricContext) -> float:
    return balanced_accuracy(y, _labels(pred, ctx))


def _prf(kind: str) -> Callable[[np.ndarray, np.ndarray, MetricContext], float]:
    def score(y: np.ndarray, pred: np.ndarray, ctx: MetricContext) -> float:
        from sklearn.metrics import f1_score, precision_score, recall_score

        fn = {"f1": f1_score, "precision": precision_score, "recall": recall_score}[kind]
        if ctx.n_classes == 2:
            return float(fn(y, _labels(pred, ctx), pos_label=ctx.positive_index, zero_division=0))
        return float(fn(y, _labels(pred, ctx), average="macro", zero_division=0))

    return score


def _rmse(y: np.ndarray, pred: np.ndarray, ctx: MetricContext) -> float:
    return float(np.sqrt(np.mean((np.asarray(y, float) - pred) ** 2)))


def _mae(y: np.ndarray, pred: np.ndarray, ctx: MetricContext) -> float:
    return float(np.mean(np.abs(np.asarray(y, float) - pred)))


def _r2(y: np.ndarray, pred: np.ndarray, ctx: MetricContext) -> float:
    y = np.asarray(y, float)
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - pred) ** 2)) / total if total > 0 else 0.0


def _mape(y: np.ndarray, pred: np.ndarray, ctx: MetricContext) -> float:
    y = np.asarray(y, float)
    return float(np.mean(np.abs(y - pred) / np.clip(np.abs(y), 1e-9, None)))


METRICS: dict[str, tuple[Callable[[np.ndarray, np.ndarray, MetricContext], float], bool]] = {
    "roc_auc": (_roc_auc, True),
    "log_loss": (_log_loss, False),
    "accuracy": (_accuracy, True),
    "balanced_accuracy": (_balanced_accuracy, True),
    "f1": (_prf("f1"), True),
    "precision": (_prf("precision"), True),
    "recall": (_prf("recall"), True),
    "rmse": (_rmse, False),
    "mae": (_mae, False),
    "r2": (_r2, True),
    "mape": (_mape, False),
}


def resolve_metric(name: str | None, task: str) -> str:
    """The canonical metric name for a task, or an InvalidInput saying which ones exist."""
    if name is None:
        return DEFAULT_METRIC[task]
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    allowed: tuple[str, ...] = (
        REGRESSION_METRICS if task in ("regression", "forecast") else CLASSIFICATION_METRICS
    )
    if task == "clustering":
        allowed = ("silhouette",)
    if key not in allowed:
        raise InvalidInput(
            f"Metric {name!r} does not apply to a {task} task.",
            next_step=f"Use one of: {', '.join(allowed)}, or leave metric unset.",
        )
    return key


def greater_is_better(metric: str) -> bool:
    return metric == "silhouette" or METRICS[metric][1]


def score(metric: str, y: np.ndarray, pred: np.ndarray, ctx: MetricContext) -> float:
    pred = np.asarray(pred)
    if pred.dtype == np.float32:  # kept out-of-fold probabilities: scored as float64 ones are
        pred = pred.astype(np.float64)
    return METRICS[metric][0](np.asarray(y), pred, ctx)


def utility(metric: str, value: float) -> float:
    """Greater-is-better form of a metric value (the search maximises this)."""
    return value if greater_is_better(metric) else -value


def companions(task: str, y: np.ndarray, pred: np.ndarray, ctx: MetricContext) -> dict[str, float]:
    """The chosen metric's usual companions on one prediction set."""
    names = (
        ("accuracy", "balanced_accuracy", "f1", "roc_auc", "log_loss")
        if task in ("binary", "multiclass")
        else ("rmse", "mae", "r2")
    )
    out: dict[str, float] = {}
    for name in names:
        try:
            out[name] = score(name, y, pred, ctx)
        except ValueError:  # e.g. ROC AUC with a single class in the holdout
            continue
    return out

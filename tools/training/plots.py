"""The evaluation plots of a finished training, as PNG bytes.

Every plot is rendered by ``mltrainer.tools.plotting.render_png``, which masks each text on the
figure first: a class label, column name or series id equal to a secret is drawn masked. The
engine hands these functions the holdout data; values that do not fit together are a bug of the
engine, not the caller's input, and raise :class:`InternalError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from mltrainer.state.errors import InternalError
from mltrainer.state.masking import Masker
from mltrainer.tools.plotting import new_figure, render_png
from mltrainer.tools.training.results import AutoMLResult, SeriesPlot

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.axes import Axes

    # A column of values: a list, a numpy array or a pandas Series.
    Vector: TypeAlias = Sequence[Any] | np.ndarray | pd.Series | pd.Index

MAX_CLASSES_DRAWN = 30
# Counts are written in the confusion matrix's cells up to this many classes: 26 classes' 676
# texts took 2.4 s to draw, in a job whose budget may be 15 s, and were too small to read.
MAX_CLASSES_COUNTED = 12
MAX_FEATURES_DRAWN = 20
# One-vs-rest ROC curves drawn beyond this many classes are the ones separated worst: 26
# curves and their legend took 0.9 s to draw (on a 15 s budget) and could not be told apart.
MAX_CURVES = 10


def _labels(values: Vector) -> list[str]:
    return [str(v) for v in values]


def confusion_matrix_png(y_true: Vector, y_pred: Vector, classes: Vector, masker: Masker) -> bytes:
    """Counts per (true, predicted) class, shaded by the share of each true class."""
    import numpy as np
    from sklearn.metrics import confusion_matrix

    names = _labels(classes)
    if not names:
        raise InternalError("a confusion matrix needs at least one class")
    counts = confusion_matrix(_labels(y_true), _labels(y_pred), labels=names)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = min(4.0 + 0.35 * len(names), 12.0)
    figure = new_figure(size + 1.0, size)
    ax = figure.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=ax, label="share of true class")
    ticks = range(len(names)) if len(names) <= MAX_CLASSES_DRAWN else []
    ax.set_xticks(list(ticks), [names[i] for i in ticks], rotation=45, ha="right")
    ax.set_yticks(list(ticks), [names[i] for i in ticks])
    if len(names) <= MAX_CLASSES_COUNTED:
        for (row, column), count in np.ndenumerate(counts):
            color = "white" if shares[row, column] > 0.5 else "black"
            ax.text(column, row, str(count), ha="center", va="center", color=color, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (holdout)")
    return render_png(figure, masker)


class RocCurve(NamedTuple):
    auc: float
    label: str
    fpr: np.ndarray
    tpr: np.ndarray


def roc_curves(
    y_true: Vector, proba: Any, classes: Vector, positive_class: Any | None = None
) -> tuple[list[RocCurve], int]:
    """The ROC curves to draw, and how many classes have one: the positive class's (binary) or
    one-vs-rest per class (multiclass), beyond MAX_CURVES classes those with the lowest AUC.
    A class missing from the holdout, or all of it, has no curve.

    ``proba`` has one column per class, in the order of ``classes``.
    """
    import numpy as np
    from sklearn.metrics import auc, roc_curve

    names = _labels(classes)
    scores = np.asarray(proba, dtype=float)
    truth = np.asarray(_labels(y_true))
    if scores.ndim != 2 or scores.shape[1] != len(names):
        raise InternalError(
            f"proba must have one column per class ({len(names)}); got shape {scores.shape}"
        )
    candidates = names
    if len(names) == 2:
        positive = str(positive_class) if positive_class is not None else names[1]
        if positive not in names:
            raise InternalError(f"positive class {positive!r} is not one of the classes {names}")
        candidates = [positive]
    curves = []
    for name in candidates:
        hits = truth == name
        if hits.all() or not hits.any():
            continue  # ROC is undefined without both outcomes in the holdout
        fpr, tpr, _ = roc_curve(hits, scores[:, names.index(name)])
        curves.append(RocCurve(float(auc(fpr, tpr)), name, fpr, tpr))
    return sorted(curves, key=lambda curve: curve.auc)[:MAX_CURVES], len(curves)


def roc_png(
    y_true: Vector,
    proba: Any,
    classes: Vector,
    masker: Masker,
    positive_class: Any | None = None,
) -> bytes:
    """The curves of :func:`roc_curves`, the worst separated class's first."""
    curves, total = roc_curves(y_true, proba, classes, positive_class)
    title = "ROC (holdout)" + ("" if len(_labels(classes)) == 2 else ", one vs rest")
    if total > len(curves):
        title += f": the {len(curves)} of {total} classes separated worst"
    figure = new_figure()
    ax = figure.add_subplot()
    for curve in curves:
        ax.plot(curve.fpr, curve.tpr, label=f"{curve.label} (AUC {curve.auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    return render_png(figure, masker)


def residuals_png(y_true: Vector, y_pred: Vector, masker: Masker) -> bytes:
    """Predicted against actual, and residuals against predicted."""
    import numpy as np

    actual = np.asarray(y_true, dtype=float)
    predicted = np.asarray(y_pred, dtype=float)
    if actual.shape != predicted.shape or actual.size == 0:
        raise InternalError("y_true and y_pred must be non-empty and of the same length")
    residuals = actual - predicted
    figure = new_figure(10.0, 4.5)
    left, right = figure.subplots(1, 2)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    left.scatter(actual, predicted, s=8, alpha=0.5)
    left.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1)
    left.set_xlabel("actual")
    left.set_ylabel("predicted")
    left.set_title("Predicted vs actual (holdout)")
    right.scatter(predicted, residuals, s=8, alpha=0.5)
    right.axhline(0.0, linestyle="--", color="grey", linewidth=1)
    right.set_xlabel("predicted")
    right.set_ylabel("actual − predicted")
    right.set_title("Residuals")
    return render_png(figure, masker)


def _draw_series(ax: Axes, series: SeriesPlot) -> None:
    import pandas as pd

    if len(series.history_times) != len(series.history) or len(series.forecast_times) != len(
        series.forecast
    ):
        raise InternalError("each time axis must be as long as its values")
    if series.actual is not None and len(series.actual) != len(series.forecast):
        raise InternalError("actual must be as long as the forecast")
    ax.plot(pd.to_datetime(pd.Series(series.history_times)), list(series.history), label="history")
    future = pd.to_datetime(pd.Series(series.forecast_times))
    ax.plot(future, list(series.forecast), label="forecast", linestyle="--")
    if series.actual is not None:
        ax.plot(future, list(series.actual), label="actual", alpha=0.7)


def forecast_png(series: SeriesPlot, masker: Masker) -> bytes:
    """The series' history, the forecast beyond it, and the actual values where known."""
    figure = new_figure(10.0, 4.5)
    ax = figure.add_subplot()
    _draw_series(ax, series)
    ax.set_title("History and forecast")
    ax.legend(loc="best", fontsize=8)
    figure.autofmt_xdate()
    return render_png(figure, masker)


def forecast_panels_png(panels: Sequence[SeriesPlot], n_series: int, masker: Masker) -> bytes:
    """History, forecast and actual values of a few series of a panel, one row each."""
    if not panels:
        raise InternalError("no series to draw")
    figure = new_figure(10.0, 1.0 + 2.6 * len(panels))
    axes = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, panel in zip(axes, panels, strict=True):
        _draw_series(ax, panel)
        ax.set_title(panel.label, fontsize=9)
        ax.legend(loc="best", fontsize=7)
    shown = len(panels)
    figure.suptitle(
        f"History and forecast: the {shown} series with the most points, of {n_series}"
        if n_series > shown
        else f"History and forecast of {n_series} series"
    )
    figure.autofmt_xdate()
    return render_png(figure, masker)


def cluster_sizes_png(labels: Vector, masker: Masker) -> bytes:
    """How many rows each cluster holds."""
    import pandas as pd

    if len(labels) == 0:
        raise InternalError("no cluster labels to count")
    sizes = pd.Series(_labels(labels)).value_counts().sort_index()
    figure = new_figure()
    ax = figure.add_subplot()
    ax.bar(sizes.index.tolist(), sizes.to_numpy())
    ax.set_xlabel("cluster")
    ax.set_ylabel("rows")
    ax.set_title(f"Cluster sizes ({len(sizes)} clusters)")
    return render_png(figure, masker)


def feature_importance_png(importance: Sequence[tuple[str, float]], masker: Masker) -> bytes:
    """The most important features, largest at the top."""
    if not importance:
        raise InternalError("no feature importance to draw")
    top = sorted(importance, key=lambda item: item[1], reverse=True)[:MAX_FEATURES_DRAWN]
    figure = new_figure(7.0, 1.0 + 0.3 * len(top))
    ax = figure.add_subplot()
    ax.barh([name for name, _ in reversed(top)], [float(value) for _, value in reversed(top)])
    ax.set_xlabel("importance")
    ax.set_title("Feature importance")
    return render_png(figure, masker)


def plots_for_result(result: AutoMLResult, masker: Masker) -> dict[str, bytes]:
    """The plots that fit the result's task, as ``{file name: PNG bytes}``; a plot whose data
    the result lacks is left out."""
    held = result.holdout_frame
    images: dict[str, bytes] = {}
    task = result.task
    if held is not None and task in ("binary", "multiclass", "text_classification"):
        if held.y_test is not None and held.y_pred is not None and result.classes:
            images["confusion_matrix.png"] = confusion_matrix_png(
                held.y_test, held.y_pred, result.classes, masker
            )
        if held.y_test is not None and held.proba is not None and result.classes:
            images["roc.png"] = roc_png(
                held.y_test, held.proba, result.classes, masker, result.positive_class
            )
    elif held is not None and task == "regression":
        if held.y_test is not None and held.y_pred is not None:
            images["residuals.png"] = residuals_png(held.y_test, held.y_pred, masker)
    elif held is not None and task == "forecast" and held.series:
        images["forecast.png"] = (
            forecast_panels_png(held.series, held.n_series or len(held.series), masker)
            if held.series_column is not None
            else forecast_png(held.series[0], masker)
        )
    elif held is not None and task == "clustering" and held.y_pred is not None:
        images["cluster_sizes.png"] = cluster_sizes_png(held.y_pred, masker)
    if result.feature_importance:
        images["feature_importance.png"] = feature_importance_png(result.feature_importance, masker)
    return images

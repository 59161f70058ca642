"""The analysis's plots, as PNG bytes with every text masked (``tools.plotting.render_png``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mltrainer.state.masking import Masker
from mltrainer.tools.analysis.models import (
    Calibration,
    ClassStat,
    ExtremeBias,
    HorizonStat,
    Measure,
    SeriesStat,
    Slice,
)
from mltrainer.tools.plotting import new_figure, render_png

MAX_BARS = 20
MAX_POINTS = 5000
LABEL_CHARS = 42
MEASURE_LABEL = {"error_rate": "error rate", "mean_abs_error": "mean |error|"}


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def slices_png(slices: Sequence[Slice], overall: float, measure: Measure, masker: Masker) -> bytes:
    """The worst slices' error beside the overall error; significant ones in red."""
    shown = list(slices)[:10][::-1]
    figure = new_figure(7.5, 1.2 + 0.45 * max(len(shown), 1))
    ax = figure.add_subplot()
    labels = [f"{_short(s.description)} (n={s.rows})" for s in shown]
    colours = ["tab:red" if s.significant else "tab:gray" for s in shown]
    ax.barh(range(len(shown)), [s.error for s in shown], color=colours)
    ax.set_yticks(range(len(shown)), labels)
    ax.axvline(overall, color="black", linestyle="--", label=f"overall {overall:.3g}")
    ax.set_xlabel(MEASURE_LABEL[measure])
    ax.set_title("Where the model errs most (red: significant)")
    ax.legend(loc="lower right")
    return render_png(figure, masker)


def calibration_png(calibration: Calibration, masker: Masker) -> bytes:
    figure = new_figure(5.5, 5.0)
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, 1], color="gray", linestyle=":", label="perfectly calibrated")
    x = [b.mean_predicted for b in calibration.bins]
    y = [b.observed for b in calibration.bins]
    sizes = [
        20 + 200 * b.rows / max(sum(c.rows for c in calibration.bins), 1) for b in calibration.bins
    ]
    ax.plot(x, y, color="tab:blue")
    ax.scatter(x, y, s=sizes, color="tab:blue", label="bins (size: rows)")
    if calibration.kind == "positive_class":
        ax.set_xlabel(f"predicted probability of {calibration.positive_class}")
        ax.set_ylabel(f"observed share of {calibration.positive_class}")
    else:
        ax.set_xlabel("confidence in the predicted class")
        ax.set_ylabel("share predicted right")
    ax.set_title(
        f"Calibration: {calibration.verdict.replace('_', ' ')} (ECE {calibration.ece:.3f})"
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    return render_png(figure, masker)


def per_class_png(per_class: Sequence[ClassStat], masker: Masker) -> bytes:
    shown = list(per_class)[:MAX_BARS]
    figure = new_figure(max(5.0, 0.6 * len(shown) + 2), 4.0)
    ax = figure.add_subplot()
    x = np.arange(len(shown))
    ax.bar(x - 0.2, [s.precision for s in shown], width=0.4, label="precision")
    ax.bar(x + 0.2, [s.recall for s in shown], width=0.4, label="recall")
    ax.set_xticks(x, [f"{_short(s.label)}\n(n={s.support})" for s in shown])
    ax.set_ylim(0, 1.05)
    ax.set_title("Precision and recall per class")
    ax.legend(loc="lower right")
    return render_png(figure, masker)


def residuals_png(predicted: np.ndarray, error: np.ndarray, masker: Masker) -> bytes:
    """Errors against the prediction: a funnel means the error grows with the prediction."""
    figure = new_figure()
    ax = figure.add_subplot()
    shown = _sample(len(error))
    ax.scatter(predicted[shown], error[shown], s=8, alpha=0.5)
    ax.axhline(0, color="black", linewidth=1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual - predicted")
    ax.set_title("Errors by prediction (heteroscedasticity)")
    return render_png(figure, masker)


def extremes_png(
    actual: np.ndarray, predicted: np.ndarray, extremes: Sequence[ExtremeBias], masker: Masker
) -> bytes:
    figure = new_figure(5.5, 5.0)
    ax = figure.add_subplot()
    shown = _sample(len(actual))
    ax.scatter(actual[shown], predicted[shown], s=8, alpha=0.4, color="tab:gray")
    for extreme in extremes:
        inside = (
            actual >= extreme.threshold if extreme.side == "high" else actual <= extreme.threshold
        )
        inside[~np.isin(np.arange(len(actual)), shown)] = False
        label = f"{extreme.side} tenth: {extreme.verdict.replace('_', ' ')}"
        ax.scatter(actual[inside], predicted[inside], s=10, label=label)
    bounds = [float(np.min(actual)), float(np.max(actual))]
    ax.plot(bounds, bounds, color="black", linestyle=":", label="actual = predicted")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title("The target's extremes")
    ax.legend(loc="upper left")
    return render_png(figure, masker)


def horizon_png(by_horizon: Sequence[HorizonStat], masker: Masker) -> bytes:
    figure = new_figure()
    ax = figure.add_subplot()
    steps = [h.step for h in by_horizon]
    ax.plot(steps, [h.scaled_mae or 0.0 for h in by_horizon], marker="o")
    ax.set_xlabel("steps after the last training date")
    ax.set_ylabel("MAE / mean |actual| of the series")
    ax.set_title("Forecast error by horizon step")
    return render_png(figure, masker)


def series_png(by_series: Sequence[SeriesStat], masker: Masker) -> bytes:
    shown = list(by_series)[:MAX_BARS][::-1]
    figure = new_figure(6.5, 1.2 + 0.4 * max(len(shown), 1))
    ax = figure.add_subplot()
    ax.barh(range(len(shown)), [s.scaled_mae or 0.0 for s in shown], color="tab:orange")
    ax.set_yticks(range(len(shown)), [f"{_short(s.series)} (n={s.rows})" for s in shown])
    ax.set_xlabel("MAE / mean |actual|")
    ax.set_title("Forecast error by series")
    return render_png(figure, masker)


def _sample(n: int) -> np.ndarray:
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, size=MAX_POINTS, replace=False))

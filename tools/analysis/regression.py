"""Regression and forecast errors: the largest, whether they grow with the prediction
(heteroscedasticity), whether the target's extremes are pulled toward the mean, and, for
forecasts, how they grow with the horizon and which series fare worst."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mltrainer.tools.analysis.facts import ModelFacts
from mltrainer.tools.analysis.models import (
    ExtremeBias,
    ForecastDetail,
    Heteroscedasticity,
    HorizonStat,
    PredictionBin,
    RegressionDetail,
    RowError,
    SeriesStat,
)
from mltrainer.tools.analysis.rows import EvaluatedRows

if TYPE_CHECKING:
    import pandas as pd

MAX_ROWS_SHOWN = 10
MAX_SERIES = 20
PREDICTION_BINS = 5
EXTREME_QUANTILE = 0.1
MIN_EXTREME_ROWS = 5
HETERO_RHO = 0.2
HETERO_ALPHA = 0.01
BIAS_ALPHA = 0.05


def residuals(rows: EvaluatedRows) -> np.ndarray:
    """actual - predicted: positive where the model predicts too low."""
    return rows.actual.to_numpy(dtype=float) - rows.predicted.to_numpy(dtype=float)


def regression_detail(rows: EvaluatedRows, facts: ModelFacts, hidden: set[str]) -> RegressionDetail:
    error = residuals(rows)
    predicted = rows.predicted.to_numpy(dtype=float)
    return RegressionDetail(
        mae=float(np.mean(np.abs(error))),
        rmse=float(np.sqrt(np.mean(error**2))),
        bias=float(np.mean(error)),
        largest_errors=_largest(rows, error, facts, hidden),
        heteroscedasticity=_heteroscedasticity(predicted, error),
        extremes=_extremes(rows.actual.to_numpy(dtype=float), error),
    )


def _largest(
    rows: EvaluatedRows, error: np.ndarray, facts: ModelFacts, hidden: set[str]
) -> list[RowError]:
    show_target = facts.target not in hidden
    actual, predicted = rows.actual.to_numpy(dtype=float), rows.predicted.to_numpy(dtype=float)
    return [
        RowError(
            row=int(rows.row[i]) if rows.row[i] >= 0 else None,
            actual=float(actual[i]) if show_target else None,
            predicted=float(predicted[i]) if show_target else None,
            error=float(error[i]) if show_target else None,
            values=rows.values_of(int(i), hidden),
        )
        for i in np.argsort(-np.abs(error), kind="stable")[:MAX_ROWS_SHOWN]
    ]


def _heteroscedasticity(predicted: np.ndarray, error: np.ndarray) -> Heteroscedasticity | None:
    import pandas as pd
    from scipy.stats import spearmanr

    if len(error) < 4 * PREDICTION_BINS or np.ptp(predicted) == 0:
        return None
    rho, p = spearmanr(predicted, np.abs(error))
    rho, p = float(np.nan_to_num(rho)), float(np.nan_to_num(p, nan=1.0))
    bins = pd.qcut(pd.Series(predicted), PREDICTION_BINS, duplicates="drop")
    by_bin = [
        PredictionBin(
            low=float(interval.left),
            high=float(interval.right),
            rows=int(inside.sum()),
            mae=float(np.mean(np.abs(error[inside]))),
        )
        for interval in bins.cat.categories
        if (inside := (bins == interval).to_numpy()).any()
    ]
    return Heteroscedasticity(
        spearman_rho=rho,
        p_value=p,
        detected=rho >= HETERO_RHO and p < HETERO_ALPHA,
        by_prediction=by_bin,
    )


def _extremes(actual: np.ndarray, error: np.ndarray) -> list[ExtremeBias]:
    """Rows in the target's lowest and highest tenth: a model that shrinks toward the mean
    predicts the high ones too low (under) and the low ones too high (over)."""
    from scipy.stats import wilcoxon

    low, high = np.quantile(actual, [EXTREME_QUANTILE, 1 - EXTREME_QUANTILE])
    if low == high:
        return []
    out = []
    for side, threshold, inside in (
        ("low", low, actual <= low),
        ("high", high, actual >= high),
    ):
        if inside.sum() < MIN_EXTREME_ROWS:
            continue
        try:
            p = float(wilcoxon(error[inside]).pvalue)
        except ValueError:  # every error is zero
            p = 1.0
        mean = float(np.mean(error[inside]))
        verdict = "unbiased"
        if p < BIAS_ALPHA:
            verdict = "under_predicted" if mean > 0 else "over_predicted"
        out.append(
            ExtremeBias(
                side=side,  # type: ignore[arg-type]
                threshold=float(threshold),
                rows=int(inside.sum()),
                mean_error=mean,
                p_value=p,
                verdict=verdict,  # type: ignore[arg-type]
            )
        )
    return out


def forecast_detail(rows: EvaluatedRows, series_column: str | None) -> ForecastDetail:
    import pandas as pd

    error = residuals(rows)
    table = pd.DataFrame(
        {
            "error": error,
            "abs": np.abs(error),
            "actual": np.abs(rows.actual.to_numpy(dtype=float)),
            "step": rows.horizon if rows.horizon is not None else 0,
            "series": rows.series.to_numpy() if rows.series is not None else "all",
        }
    )
    scale = table.groupby("series")["actual"].transform("mean")
    table["scaled"] = (table["abs"] / scale).where(scale > 0)
    by_horizon = [
        HorizonStat(
            step=int(step),
            rows=len(part),
            mae=float(part["abs"].mean()),
            rmse=float(np.sqrt((part["error"] ** 2).mean())),
            bias=float(part["error"].mean()),
            scaled_mae=_mean_or_none(part["scaled"]),
        )
        for step, part in table.groupby("step", sort=True)
    ]
    by_series = [
        SeriesStat(
            series=str(name),
            rows=len(part),
            mae=float(part["abs"].mean()),
            scaled_mae=_mean_or_none(part["scaled"]),
            bias=float(part["error"].mean()),
        )
        for name, part in table.groupby("series", sort=True)
    ]
    by_series.sort(key=lambda s: -(s.scaled_mae if s.scaled_mae is not None else -1.0))
    ahead = [h for h in by_horizon if h.step > 0]
    growth = None
    if rows.horizon is not None and len(ahead) >= 2 and ahead[0].scaled_mae:
        growth = (ahead[-1].scaled_mae or 0.0) / ahead[0].scaled_mae
    return ForecastDetail(
        mae=float(table["abs"].mean()),
        rmse=float(np.sqrt((table["error"] ** 2).mean())),
        series_column=series_column,
        by_horizon=by_horizon if rows.horizon is not None else [],
        by_series=by_series[:MAX_SERIES],
        growth=growth,
    )


def _mean_or_none(values: pd.Series) -> float | None:
    mean = values.mean()
    return float(mean) if np.isfinite(mean) else None

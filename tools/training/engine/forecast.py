"""Forecasting one series: lag, rolling and calendar features; time-ordered validation.

The holdout is the last ``horizon`` points, forecast recursively from the end of the training
part (as the model will be used). Candidates are compared on one-step-ahead errors over
expanding time-series folds; the winner is refitted on the whole series.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from tools.errors import InvalidInput
from tools.training.engine.custom import ForecastModel, make_lag_features
from tools.training.engine.metrics import MetricContext, companions, score, utility
from tools.training.engine.search import parallel_map
from tools.training.planner import TrainingPlan
from tools.training.reporting import Reporter

if TYPE_CHECKING:
    import pandas as pd

    from tools.training.automl import AutoMLResult

MIN_POINTS = 20


def _series(frame: pd.DataFrame, plan: TrainingPlan) -> tuple[pd.Series, np.ndarray, str | None]:
    import pandas as pd

    assert plan.time_column is not None and plan.target is not None
    times = pd.to_datetime(frame[plan.time_column], errors="coerce", format="mixed")
    values = pd.to_numeric(frame[plan.target], errors="coerce")
    data = pd.DataFrame({"t": times, "y": values}).dropna()
    if data["t"].duplicated().any():
        data = data.groupby("t", as_index=False)["y"].mean()
        plan.decide(
            "forecast",
            "average rows that share a timestamp",
            "one series is forecast; several rows per date were found",
        )
    data = data.sort_values("t").reset_index(drop=True)
    if len(data) < MIN_POINTS:
        raise InvalidInput(
            f"Only {len(data)} usable points in the series; forecasting needs {MIN_POINTS}+.",
            next_step="Check time_column and target, or use a longer series.",
        )
    with warnings.catch_warnings():  # pandas 3 warns that infer_freq will return an offset
        warnings.simplefilter("ignore")
        freq = pd.infer_freq(data["t"]) if len(data) >= 3 else None
    freq = getattr(freq, "freqstr", freq)
    if freq is None:
        step = data["t"].diff().median()
        freq = pd.tseries.frequencies.to_offset(step).freqstr if step > pd.Timedelta(0) else None
        plan.decide("forecast", f"frequency {freq}", "the median gap between timestamps")
    return data["t"], data["y"].to_numpy(dtype=float), freq


def _lags(n: int, horizon: int) -> tuple[list[int], list[int]]:
    lags = [lag for lag in (1, 2, 3, 4, 5, 6, 7, 12, 14, 24, 28, 52) if lag < n // 3]
    windows = [w for w in (3, 7, 14, 28) if w < n // 3]
    return lags or [1], windows or [2]


def _candidates(seed: int) -> list[tuple[str, Any]]:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return [
        ("ridge", make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), Ridge(1.0))),
        (
            "hist_gradient_boosting",
            HistGradientBoostingRegressor(
                max_iter=300, learning_rate=0.05, min_samples_leaf=5, random_state=seed
            ),
        ),
        (
            "hist_gradient_boosting_small",
            HistGradientBoostingRegressor(
                max_iter=150,
                learning_rate=0.1,
                max_leaf_nodes=8,
                min_samples_leaf=10,
                random_state=seed,
            ),
        ),
    ]


def fit_forecast(
    frame: pd.DataFrame, plan: TrainingPlan, reporter: Reporter, start: float
) -> AutoMLResult:
    import pandas as pd
    from sklearn.base import clone
    from sklearn.model_selection import TimeSeriesSplit

    from tools.training.automl import AutoMLResult, LeaderboardEntry, library_versions

    end = start + plan.time.total_s
    if plan.columns:
        plan.decide(
            "forecast",
            f"ignore {len(plan.columns)} other columns",
            "the forecaster uses the series' own past and the calendar only",
        )
    times, values, freq = _series(frame, plan)
    n = len(values)
    horizon = plan.horizon or max(1, min(n // 5, 30))
    n_test = min(horizon, max(1, n // 4))
    lags, windows = _lags(n - n_test, horizon)
    plan.decide(
        "forecast",
        f"lags {lags}, rolling windows {windows}, holdout {n_test} points",
        "from the series length and the horizon",
    )
    features = make_lag_features(values, times, lags, windows)
    train_feats, train_y = features.iloc[: n - n_test], values[: n - n_test]
    first = max(lags + windows)  # rows before this lack some lag: left out of training
    ctx = MetricContext()
    splits = list(
        TimeSeriesSplit(n_splits=min(5, max(2, (n - n_test) // 10))).split(
            np.arange(first, n - n_test)
        )
    )
    leaderboard: list[Any] = []
    best: tuple[float, str, Any] | None = None
    allowed = {f.name for f in plan.families}
    for name, model in _candidates(plan.seed):
        if (name == "ridge" and "linear" not in allowed) or (
            name.startswith("hist") and "hist_gradient_boosting" not in allowed
        ):
            continue
        if reporter.cancelled() or (
            best is not None and time.monotonic() > end - 0.3 * (plan.time.total_s)
        ):
            break
        began = time.monotonic()

        def fold_score(fold: tuple[np.ndarray, np.ndarray], model: Any = model) -> float | None:
            if time.monotonic() > end - 0.2 * plan.time.total_s:
                return None
            tr, va = fold[0] + first, fold[1] + first
            with threadpool_limits(limits=1):
                fitted = clone(model).fit(train_feats.iloc[tr], train_y[tr])
                return score(plan.metric, train_y[va], fitted.predict(train_feats.iloc[va]), ctx)

        scores = [v for v in parallel_map(fold_score, splits) if v is not None]
        if not scores:
            break
        mean = float(np.mean(scores))
        leaderboard.append(
            LeaderboardEntry(
                name=name,
                family=name,
                params={},
                cv_mean=mean,
                cv_std=float(np.std(scores)),
                fit_time_s=round(time.monotonic() - began, 3),
            )
        )
        reporter.event(f"{name}: one-step {plan.metric} {mean:.4f}", progress=0.3)
        if best is None or utility(plan.metric, mean) > utility(plan.metric, best[0]):
            best = (mean, name, model)
            partial = clone(model).fit(train_feats.iloc[first:], train_y[first:])
            reporter.publish(
                _model(
                    plan, partial, lags, windows, times[: n - n_test], values[: n - n_test], freq
                ),
                {"name": name, "metric": plan.metric, "score": mean, "task": "forecast"},
            )
    assert best is not None
    mean, name, model = best
    plan.decide("model", name, f"best one-step {plan.metric} over time-ordered folds")
    on_train = clone(model).fit(train_feats.iloc[first:], train_y[first:])
    holdout_model = _model(
        plan, on_train, lags, windows, times[: n - n_test], values[: n - n_test], freq
    )
    forecast = holdout_model.forecast(n_test)["forecast"].to_numpy()
    y_test = values[n - n_test :]
    holdout = {plan.metric: score(plan.metric, y_test, forecast, ctx)}
    holdout.update(companions("regression", y_test, forecast, ctx))
    reporter.event(
        f"Holdout (recursive, {n_test} steps) {plan.metric}: {holdout[plan.metric]:.4f}",
        progress=0.9,
    )
    final_regressor = clone(model).fit(features.iloc[first:], values[first:])
    estimator = _model(plan, final_regressor, lags, windows, times, values, freq)
    for entry in leaderboard:
        entry.weight = 1.0 if entry.name == name else 0.0
    importance: list[tuple[str, float]] = []
    if hasattr(final_regressor, "coef_") or hasattr(final_regressor, "feature_importances_"):
        raw = getattr(final_regressor, "feature_importances_", None)
        if raw is not None:
            importance = sorted(
                zip(features.columns, map(float, raw), strict=True),
                key=lambda kv: kv[1],
                reverse=True,
            )
    return AutoMLResult(
        estimator=estimator,
        task="forecast",
        metric=plan.metric,
        greater_is_better=plan.greater_is_better,
        target=plan.target,
        features=[plan.time_column] if plan.time_column else [],
        plan=plan,
        decisions=plan.decisions,
        leaderboard=sorted(
            leaderboard, key=lambda e: utility(plan.metric, e.cv_mean), reverse=True
        ),
        cv_mean=mean,
        cv_std=next(e.cv_std for e in leaderboard if e.name == name),
        holdout=holdout,
        feature_importance=importance,
        holdout_frame={
            "X_test": pd.DataFrame({plan.time_column: times[n - n_test :].to_numpy()}),
            "y_test": y_test,
            "y_pred": forecast,
            "proba": None,
            "history": pd.DataFrame({plan.time_column: times.to_numpy(), "y": values}),
        },
        dropped_columns=plan.dropped,
        seed=plan.seed,
        library_versions=library_versions(),
        elapsed_s=round(time.monotonic() - start, 3),
        model_name=name,
    )


def _model(
    plan: TrainingPlan,
    regressor: Any,
    lags: list[int],
    windows: list[int],
    times: pd.Series,
    values: np.ndarray,
    freq: str | None,
) -> ForecastModel:
    assert plan.time_column is not None
    return ForecastModel(
        time_column=plan.time_column,
        regressor=regressor,
        lags=lags,
        windows=windows,
        history_times=[t.isoformat() for t in times],
        history_values=[float(v) for v in values],
        freq=freq,
    )

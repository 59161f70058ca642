"""Forecasting one series or several (a panel): lag, rolling and calendar features, a seeded search.

With ``group_column`` one global model learns every series: features are computed within each
series (never across), each series is divided by its scale, and its index is a feature. The
holdout is the last ``n_test`` points of every series, forecast recursively from the end of the
training part (as the model will be used). Candidates -- a seasonal-naive yardstick, ridge and
gradient-boosting configurations, each learning the level or the change from the last value, and
a blend of the best of each kind -- are compared on recursive ``n_test``-step forecasts from up
to 8 origins spread in time order over the union of timestamps (the model learns the rows up to
each origin), until the search budget runs out; the winner is refitted on all the data.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.training.engine.custom import (
    SERIES_FEATURE,
    ChangeRegressor,
    ForecastModel,
    MeanRegressor,
    SeasonalNaive,
    last_values,
    make_lag_features,
    recursive_forecast,
)
from mltrainer.tools.training.engine.metrics import MetricContext, companions, score, utility
from mltrainer.tools.training.engine.search import parallel_map
from mltrainer.tools.training.planner import TrainingPlan
from mltrainer.tools.training.reporting import Reporter

if TYPE_CHECKING:
    import pandas as pd

    from mltrainer.tools.training.automl import AutoMLResult, LeaderboardEntry

MIN_POINTS = 20
MAX_CANDIDATES = 40
MAX_CATEGORIES = 250  # HistGradientBoosting's limit on a categorical feature's values
PLOTTED_SERIES = 3
RIDGE_ALPHAS = (1.0, 10.0, 0.1, 100.0)
HGB_CONFIGS: tuple[dict[str, Any], ...] = (
    {"max_iter": 300, "learning_rate": 0.05, "min_samples_leaf": 5},
    {"max_iter": 150, "learning_rate": 0.1, "max_leaf_nodes": 8, "min_samples_leaf": 10},
    {
        "max_iter": 500,
        "learning_rate": 0.03,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 20,
        "l2_regularization": 1.0,
    },
    {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 3},
)


@dataclass
class Panel:
    """The usable series, each sorted by time; ``column`` is None for a single series."""

    column: str | None
    ids: list[str]
    times: list[pd.Series]
    values: list[np.ndarray]
    freq: str | None


@dataclass
class Table:
    """Every series' feature rows stacked, with what each row is (series, position, time)."""

    features: pd.DataFrame
    y: np.ndarray  # scaled target
    scale: np.ndarray  # per row: the scale of its series
    code: np.ndarray
    test: np.ndarray  # in the holdout (the last n_test points of its series)
    trainable: np.ndarray  # has every lag, not in the holdout
    times: np.ndarray
    position: np.ndarray  # index within its series


@dataclass
class Candidate:
    name: str
    family: str
    params: dict[str, Any]
    model: Any


def season_length(freq: str | None) -> int:
    """Steps in a season: 7 daily, 5 business-daily, 12 monthly, 24 hourly, 52 weekly, 4 quarterly.

    Anything else (yearly, minutes, multiples like ``2D``) has no season: 1, the last value.
    """
    import pandas as pd

    if not freq:
        return 1
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        return 1
    if offset.n != 1:
        return 1
    name = str(offset.rule_code)
    if name == "D":
        return 7
    if name in ("h", "H"):
        return 24
    if name.startswith("W"):
        return 52
    if name.startswith(("Q", "BQ")):
        return 4
    if name.startswith(("M", "BM")):
        return 12
    if name == "B":
        return 5  # business days: a week
    return 1


def _suggest_series_column(frame: pd.DataFrame, plan: TrainingPlan, times: pd.Series) -> str | None:
    """A low-cardinality column that makes (column, time) unique: likely a series id."""
    import pandas as pd

    for name in frame.columns:
        if name in (plan.time_column, plan.target):
            continue
        column = frame[name]
        if not (
            pd.api.types.is_integer_dtype(column)
            or pd.api.types.is_string_dtype(column)
            or isinstance(column.dtype, pd.CategoricalDtype)
        ):
            continue
        n_unique = column.nunique()
        if not 2 <= n_unique <= min(1000, max(2, len(frame) // 3)):
            continue
        pairs = pd.DataFrame({"s": column, "t": times}).dropna()
        if not pairs.duplicated().any():
            return str(name)
    return None


def _frequency(times: pd.Series, plan: TrainingPlan) -> str | None:
    import pandas as pd

    with warnings.catch_warnings():  # pandas 3 warns that infer_freq will return an offset
        warnings.simplefilter("ignore")
        freq = pd.infer_freq(times) if len(times) >= 3 else None
    freq = getattr(freq, "freqstr", freq)
    if freq is None:
        step = times.diff().median()
        freq = pd.tseries.frequencies.to_offset(step).freqstr if step > pd.Timedelta(0) else None
        plan.decide("forecast", f"frequency {freq}", "the median gap between timestamps")
    return freq


def _panel(frame: pd.DataFrame, plan: TrainingPlan) -> Panel:
    import pandas as pd

    assert plan.time_column is not None and plan.target is not None
    group = plan.validation.group_column
    times = pd.to_datetime(frame[plan.time_column], errors="coerce", format="mixed")
    data = pd.DataFrame({"t": times, "y": pd.to_numeric(frame[plan.target], errors="coerce")})
    data["s"] = frame[group] if group else ""
    data = data.dropna()
    data["s"] = data["s"].astype(str)
    if data.duplicated(["s", "t"]).any():
        if group:
            reason = f"several rows share a ({group}, {plan.time_column}) pair"
        else:
            candidate = _suggest_series_column(frame, plan, times)
            reason = "one series is forecast; several rows per date were found" + (
                f"; {candidate!r} looks like a series id (it makes ({candidate}, "
                f"{plan.time_column}) unique): pass group_column={candidate!r} to forecast "
                "each series"
                if candidate
                else ""
            )
        data = data.groupby(["s", "t"], as_index=False)["y"].mean()
        plan.decide("forecast", "average rows that share a timestamp", reason)
    data = data.sort_values(["s", "t"]).reset_index(drop=True)
    ids, series_times, series_values, short = [], [], [], []
    for sid, part in data.groupby("s", sort=True):
        if len(part) < MIN_POINTS:
            short.append(str(sid))
            continue
        ids.append(str(sid))
        series_times.append(part["t"].reset_index(drop=True))
        series_values.append(part["y"].to_numpy(dtype=float))
    if not ids:
        longest = int(data.groupby("s").size().max()) if len(data) else 0
        raise InvalidInput(
            f"Only {longest} usable points in the longest series; forecasting needs "
            f"{MIN_POINTS}+ per series.",
            next_step="Check time_column, target and group_column, or use longer series.",
        )
    if short and group:
        shown = ", ".join(short[:10]) + (" ..." if len(short) > 10 else "")
        plan.decide(
            "forecast",
            f"drop {len(short)} series shorter than {MIN_POINTS} points: {shown}",
            "too short to learn lags from or to hold out a test part",
        )
    longest = int(np.argmax([len(v) for v in series_values]))
    freq = _frequency(series_times[longest], plan)
    return Panel(group, ids, series_times, series_values, freq)


def _lags(n: int, season: int) -> tuple[list[int], list[int]]:
    lags = [lag for lag in (1, 2, 3, 4, 5, 6, 7, 12, 14, 24, 28, 52) if lag < n // 3]
    if season > 1 and season not in lags:
        lags = sorted([*lags, season])
    windows = [w for w in (3, 7, 14, 28) if w < n // 3]
    return lags or [1], windows or [2]


def _table(
    panel: Panel, scales: np.ndarray, lags: list[int], windows: list[int], n_test: int
) -> Table:
    import pandas as pd

    first = max(lags + windows)  # rows before this lack some lag: left out of training
    parts, ys, codes, positions, tests, stamps = [], [], [], [], [], []
    for code, (times, values) in enumerate(zip(panel.times, panel.values, strict=True)):
        scaled = values / scales[code]
        features = make_lag_features(scaled, times, lags, windows)
        if panel.column is not None:
            features[SERIES_FEATURE] = float(code)
        n = len(values)
        parts.append(features)
        ys.append(scaled)
        codes.append(np.full(n, code))
        positions.append(np.arange(n))
        tests.append(np.arange(n) >= n - n_test)
        stamps.append(times.to_numpy())
    position = np.concatenate(positions)
    test = np.concatenate(tests)
    code_per_row = np.concatenate(codes)
    return Table(
        features=pd.concat(parts, ignore_index=True),
        y=np.concatenate(ys),
        scale=scales[code_per_row],
        code=code_per_row,
        test=test,
        trainable=(position >= first) & ~test,
        times=np.concatenate(stamps),
        position=position,
    )


@dataclass
class Fold:
    """One forecast origin: the model learns the rows up to it and forecasts ``n_test`` steps of
    every series that has history before it and values after it (outside the holdout)."""

    train: np.ndarray  # row indices of the table
    codes: list[int]
    tails: np.ndarray  # scaled last values per series, for the recursive forecast
    positions: np.ndarray
    future: list[pd.DatetimeIndex]
    actual: np.ndarray  # raw values, one row per series; NaN where the series has no value
    scales: np.ndarray


def _folds(
    panel: Panel, table: Table, scales: np.ndarray, lags: list[int], windows: list[int], n_test: int
) -> list[Fold]:
    """Forecast origins spread over the union of the training timestamps (in time order): up to 8
    on small tables, where each origin adds few points to the score, 5 on larger ones."""
    import pandas as pd

    width = max(lags + windows)
    rows = np.flatnonzero(table.trainable)
    moments = np.unique(table.times[rows])
    last = max(0, len(moments) - 1 - n_test)
    first = min(last, max(len(moments) // 3, min(10, len(moments) - 1)))
    wanted = 8 if len(rows) < 20_000 else 5
    origins = np.unique(
        np.linspace(first, last, num=min(wanted, last - first + 1)).round().astype(int)
    )
    folds = []
    for origin in origins:
        cut = moments[origin]
        codes, tails, positions, future, actual = [], [], [], [], []
        for code, (times, values) in enumerate(zip(panel.times, panel.values, strict=True)):
            known = int(np.searchsorted(times.to_numpy(), cut, side="right"))
            ahead = values[known : len(values) - n_test][:n_test]
            if known <= width or not len(ahead):
                continue
            codes.append(code)
            tails.append(last_values(values[:known] / scales[code], width))
            positions.append(known)
            future.append(
                pd.date_range(times.iloc[known - 1], periods=n_test + 1, freq=panel.freq or "D")[1:]
            )
            actual.append(np.pad(ahead, (0, n_test - len(ahead)), constant_values=np.nan))
        if codes:
            folds.append(
                Fold(
                    train=rows[table.times[rows] <= cut],
                    codes=codes,
                    tails=np.asarray(tails),
                    positions=np.asarray(positions, dtype=float),
                    future=future,
                    actual=np.asarray(actual),
                    scales=scales[codes],
                )
            )
    return folds


def _ridge(alpha: float, panel: bool) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    if not panel:
        return make_pipeline(numeric, Ridge(alpha))
    encode = ColumnTransformer(
        [("series", OneHotEncoder(handle_unknown="ignore"), [SERIES_FEATURE])], remainder=numeric
    )
    return make_pipeline(encode, Ridge(alpha))


def _hgb(params: dict[str, Any], n_series: int, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    categorical = [SERIES_FEATURE] if 1 < n_series <= MAX_CATEGORIES else None
    return HistGradientBoostingRegressor(
        **params, categorical_features=categorical, random_state=seed
    )


def _candidates(plan: TrainingPlan, n_series: int, season: int) -> Iterator[Candidate]:
    """The seasonal-naive yardstick, then ridge and boosting in turn, each learning the level and
    the change from the last value, then sampled boosting configurations."""
    allowed = {f.name for f in plan.families}
    panel = plan.validation.group_column is not None
    yield Candidate("seasonal_naive", "seasonal_naive", {"season": season}, SeasonalNaive(season))
    if season > 1:
        yield Candidate("naive", "naive", {"season": 1}, SeasonalNaive(1))
    grid: list[tuple[str, dict[str, Any], Any]] = []
    ridges = [a for a in RIDGE_ALPHAS if "linear" in allowed]
    boosts = list(HGB_CONFIGS) if "hist_gradient_boosting" in allowed else []
    for i in range(max(len(ridges), len(boosts))):
        if i < len(ridges):
            grid.append(("linear", {"alpha": ridges[i]}, _ridge(ridges[i], panel)))
        if i < len(boosts):
            grid.append(("hist_gradient_boosting", boosts[i], _hgb(boosts[i], n_series, plan.seed)))
    rng = np.random.default_rng(plan.seed)
    while boosts and len(grid) < MAX_CANDIDATES:
        params = {
            "max_iter": int(rng.choice([100, 200, 400, 800])),
            "learning_rate": float(rng.choice([0.02, 0.05, 0.1, 0.2])),
            "max_leaf_nodes": int(rng.choice([7, 15, 31, 63])),
            "min_samples_leaf": int(rng.choice([3, 5, 10, 20, 40])),
            "l2_regularization": float(rng.choice([0.0, 0.1, 1.0, 10.0])),
        }
        grid.append(("hist_gradient_boosting", params, _hgb(params, n_series, plan.seed)))
    counts: dict[str, int] = {}
    for family, params, model in grid:
        for target in ("level", "change"):
            number = counts[family] = counts.get(family, -1) + 1
            yield Candidate(
                f"{family}#{number}",
                family,
                {**params, "target": target},
                model if target == "level" else ChangeRegressor(model),
            )


def _with_blend(
    candidates: Iterator[Candidate],
    leaderboard: list[LeaderboardEntry],
    metric: str,
    at: float,
) -> Iterator[Candidate]:
    """The candidates, with a blend of the best three of different kinds tried once ``at`` has
    passed (or at the end)."""
    known: dict[str, Candidate] = {}
    blended = False
    for candidate in candidates:
        if not blended and time.monotonic() > at:
            blended = True
            yield from _blend(leaderboard, known, metric)
        known[candidate.name] = candidate
        yield candidate
    if not blended:
        yield from _blend(leaderboard, known, metric)


def _blend(
    leaderboard: list[LeaderboardEntry], known: dict[str, Candidate], metric: str
) -> list[Candidate]:
    learned = [e for e in leaderboard if e.family in ("linear", "hist_gradient_boosting")]
    ranked = sorted(learned, key=lambda e: utility(metric, e.cv_mean), reverse=True)
    top: list[LeaderboardEntry] = []
    for entry in ranked:  # the best of each kind (family, level or change) for diversity
        kinds = {(e.family, e.params.get("target")) for e in top}
        if (entry.family, entry.params.get("target")) not in kinds:
            top.append(entry)
    top = top[:3]
    if len(top) < 2:
        return []
    names = [e.name for e in top]
    model = MeanRegressor([known[name].model for name in names])
    return [Candidate("blend", "blend", {"members": names}, model)]


def _forecast_model(
    plan: TrainingPlan,
    panel: Panel,
    regressor: Any,
    lags: list[int],
    windows: list[int],
    scales: np.ndarray,
    cut: int = 0,
) -> ForecastModel:
    """A ForecastModel over every series' history without its last ``cut`` points."""
    assert plan.time_column is not None
    times = [t.iloc[: len(t) - cut] for t in panel.times]
    values = [v[: len(v) - cut] for v in panel.values]
    several = panel.column is not None
    return ForecastModel(
        time_column=plan.time_column,
        regressor=regressor,
        lags=lags,
        windows=windows,
        history_times=[s.isoformat() for t in times for s in t],
        history_values=[float(x) for v in values for x in v],
        freq=panel.freq,
        series_column=panel.column,
        series_ids=list(panel.ids) if several else None,
        history_series=[sid for sid, v in zip(panel.ids, values, strict=True) for _ in v]
        if several
        else None,
        scales=[float(s) for s in scales],
    )


def _holdout_forecast(model: ForecastModel, panel: Panel, n_test: int) -> np.ndarray:
    """Recursive forecasts of each series' last ``n_test`` points, series after series."""
    return model.forecast(n_test)["forecast"].to_numpy()


def fit_forecast(
    frame: pd.DataFrame, plan: TrainingPlan, reporter: Reporter, start: float
) -> AutoMLResult:
    from sklearn.base import clone

    from mltrainer.tools.training.automl import AutoMLResult, LeaderboardEntry, library_versions

    total = plan.time.total_s
    end = start + total
    if plan.columns:
        plan.decide(
            "forecast",
            f"ignore {len(plan.columns)} other columns",
            "the forecaster uses the series' own past and the calendar only",
        )
    panel = _panel(frame, plan)
    several = panel.column is not None
    n_min = min(len(v) for v in panel.values)
    horizon = plan.horizon or max(1, min(n_min // 5, 30))
    n_test = min(horizon, max(1, n_min // 4))
    season = season_length(panel.freq)
    if season >= (n_min - n_test) // 2:
        plan.decide(
            "forecast",
            "seasonal naive with season 1 (the last value)",
            f"the series are too short for a season of {season} steps",
        )
        season = 1
    lags, windows = _lags(n_min - n_test, season)
    scales = np.asarray([_scale(v[: len(v) - n_test]) for v in panel.values], dtype=float)
    plan.decide(
        "forecast",
        f"{len(panel.ids)} series" if several else "one series",
        f"one global model over every {panel.column}, series id as a feature, each series "
        "divided by its mean absolute value"
        if several
        else "no group_column",
    )
    plan.decide(
        "forecast",
        f"lags {lags}, rolling windows {windows}, season {season}, holdout {n_test} points"
        + (" per series" if several else ""),
        "from the shortest series' length, the horizon and the frequency",
    )
    table = _table(panel, scales, lags, windows, n_test)
    folds = _folds(panel, table, scales, lags, windows, n_test)
    ctx = MetricContext()
    X, y = table.features, table.y
    train_rows = np.flatnonzero(table.trainable)
    search_end = start + 0.75 * total
    leaderboard: list[LeaderboardEntry] = []
    best: tuple[float, Candidate, Any] | None = None  # (cv score, candidate, fit on train part)
    candidates = _with_blend(
        _candidates(plan, len(panel.ids), season), leaderboard, plan.metric, start + 0.5 * total
    )
    stopped = "converged"  # every candidate tried
    for candidate in candidates:
        if reporter.cancelled():
            plan.decide("search", "stopped early", "the job was cancelled")
            stopped = "cancelled"
            break
        if best is not None and time.monotonic() > search_end:
            plan.decide(
                "search",
                f"stopped after {len(leaderboard)} candidates",
                "the search's share of the time budget is spent",
            )
            stopped = "time"
            break
        began = time.monotonic()

        def fold_score(
            fold: Fold,
            model: Any = candidate.model,
            may_skip: bool = best is not None,  # the first candidate must finish
        ) -> float | None:
            if may_skip and time.monotonic() > end - 0.15 * total:
                return None
            with threadpool_limits(limits=1):
                fitted = clone(model).fit(X.iloc[fold.train], y[fold.train])
                predicted = (
                    recursive_forecast(
                        fitted,
                        fold.tails,
                        fold.positions,
                        fold.future,
                        lags,
                        windows,
                        fold.codes if several else None,
                    )
                    * fold.scales[:, None]
                )
            known = ~np.isnan(fold.actual)
            return score(plan.metric, fold.actual[known], predicted[known], ctx)

        scores = [v for v in parallel_map(fold_score, folds) if v is not None]
        if len(scores) < len(folds):
            break  # out of time within the folds: a partial score would not compare fairly
        mean = float(np.mean(scores))
        leaderboard.append(
            LeaderboardEntry(
                name=candidate.name,
                family=candidate.family,
                params=candidate.params,
                cv_mean=mean,
                cv_std=float(np.std(scores)),
                fit_time_s=round(time.monotonic() - began, 3),
            )
        )
        reporter.event(
            f"{candidate.name}: {plan.metric} {mean:.4f} ({n_test}-step forecasts)",
            progress=min(0.85, 0.05 + 0.8 * (time.monotonic() - start) / (0.75 * total)),
        )
        if best is None or utility(plan.metric, mean) > utility(plan.metric, best[0]):
            with threadpool_limits(limits=1):
                on_train = clone(candidate.model).fit(X.iloc[train_rows], y[train_rows])
            best = (mean, candidate, on_train)
            reporter.publish(
                _forecast_model(plan, panel, on_train, lags, windows, scales, cut=n_test),
                {
                    "name": candidate.name,
                    "metric": plan.metric,
                    "score": mean,
                    "task": "forecast",
                    "features": _features(plan, panel),
                },
            )
    assert best is not None
    mean, chosen, on_train = best
    plan.decide(
        "model",
        chosen.name,
        f"best {plan.metric} of recursive {n_test}-step forecasts from {len(folds)} origins in "
        "time order",
    )
    y_test = np.concatenate([v[len(v) - n_test :] for v in panel.values])
    holdout_model = _forecast_model(plan, panel, on_train, lags, windows, scales, cut=n_test)
    forecast = _holdout_forecast(holdout_model, panel, n_test)
    holdout = {plan.metric: score(plan.metric, y_test, forecast, ctx)}
    holdout.update(companions("regression", y_test, forecast, ctx))
    _compare_with_seasonal_naive(
        plan, panel, leaderboard, chosen, holdout, y_test, lags, windows, scales, n_test, season
    )
    reporter.event(
        f"Holdout (recursive, {n_test} steps) {plan.metric}: {holdout[plan.metric]:.4f}",
        progress=0.9,
    )
    everything = np.flatnonzero(table.position >= max(lags + windows))  # holdout included
    with threadpool_limits(limits=1):
        final_regressor = clone(chosen.model).fit(X.iloc[everything], y[everything])
    estimator = _forecast_model(plan, panel, final_regressor, lags, windows, scales)
    for entry in leaderboard:
        entry.weight = 1.0 if entry.name == chosen.name else 0.0
    importance: list[tuple[str, float]] = []
    raw_importance = getattr(final_regressor, "feature_importances_", None)
    if raw_importance is not None:
        importance = sorted(
            zip(X.columns, map(float, raw_importance), strict=True),
            key=lambda kv: kv[1],
            reverse=True,
        )
    return AutoMLResult(
        estimator=estimator,
        task="forecast",
        metric=plan.metric,
        greater_is_better=plan.greater_is_better,
        target=plan.target,
        features=_features(plan, panel),
        plan=plan,
        decisions=plan.decisions,
        leaderboard=sorted(
            leaderboard, key=lambda e: utility(plan.metric, e.cv_mean), reverse=True
        ),
        cv_mean=mean,
        cv_std=next(e.cv_std for e in leaderboard if e.name == chosen.name),
        holdout=holdout,
        feature_importance=importance,
        holdout_frame=_holdout_frame(plan, panel, n_test, y_test, forecast),
        dropped_columns=plan.dropped,
        seed=plan.seed,
        library_versions=library_versions(),
        search_stopped=stopped,
        elapsed_s=round(time.monotonic() - start, 3),
        model_name=chosen.name,
    )


def _scale(values: np.ndarray) -> float:
    level = float(np.mean(np.abs(values))) if len(values) else 0.0
    return level if np.isfinite(level) and level > 1e-12 else 1.0


def _features(plan: TrainingPlan, panel: Panel) -> list[str]:
    assert plan.time_column is not None
    return [plan.time_column, *([panel.column] if panel.column else [])]


def _compare_with_seasonal_naive(
    plan: TrainingPlan,
    panel: Panel,
    leaderboard: list[LeaderboardEntry],
    chosen: Candidate,
    holdout: dict[str, float],
    y_test: np.ndarray,
    lags: list[int],
    windows: list[int],
    scales: np.ndarray,
    n_test: int,
    season: int,
) -> None:
    """A decision saying how much the chosen model beats the seasonal-naive yardstick."""
    metric = plan.metric
    naive = next((e for e in leaderboard if e.family == "seasonal_naive"), None)
    if naive is None:
        return
    naive_model = _forecast_model(plan, panel, SeasonalNaive(season), lags, windows, scales, n_test)
    naive_holdout = score(
        metric, y_test, _holdout_forecast(naive_model, panel, n_test), MetricContext()
    )
    holdout[f"seasonal_naive_{metric}"] = naive_holdout
    if chosen.family == "seasonal_naive":
        plan.decide(
            "baseline",
            "seasonal naive is the model",
            f"no candidate beat the value one season ({season} steps) ago on {metric} over "
            "the folds",
        )
        return
    cv = next(e.cv_mean for e in leaderboard if e.name == chosen.name)
    gain = utility(metric, cv) - utility(metric, naive.cv_mean)
    relative = gain / abs(naive.cv_mean) * 100 if naive.cv_mean else float("nan")
    held_gain = utility(metric, holdout[metric]) - utility(metric, naive_holdout)
    held_relative = held_gain / abs(naive_holdout) * 100 if naive_holdout else float("nan")
    verdict = "beats" if held_gain > 0 else "does not beat"
    plan.decide(
        "baseline",
        f"{chosen.name} {verdict} seasonal naive (season {season}) on the holdout: "
        f"{metric} {holdout[metric]:.4g} vs {naive_holdout:.4g} ({held_relative:+.1f}%)",
        f"{metric} over the folds {cv:.4g} vs {naive.cv_mean:.4g} ({relative:+.1f}%); "
        "positive percentages mean better than the yardstick",
    )


def _holdout_frame(
    plan: TrainingPlan, panel: Panel, n_test: int, y_test: np.ndarray, forecast: np.ndarray
) -> dict[str, Any]:
    """What the report plots: history, forecast and actual values, for up to 3 series."""
    import pandas as pd

    assert plan.time_column is not None
    test_times = [t.iloc[len(t) - n_test :] for t in panel.times]
    x_test = pd.DataFrame({plan.time_column: pd.concat(test_times, ignore_index=True).to_numpy()})
    if panel.column is not None:
        x_test[panel.column] = np.repeat(panel.ids, n_test)
    held: dict[str, Any] = {"X_test": x_test, "y_test": y_test, "y_pred": forecast, "proba": None}
    order = sorted(range(len(panel.ids)), key=lambda i: -len(panel.values[i]))
    panels = []
    for code in order[:PLOTTED_SERIES]:
        times, values = panel.times[code], panel.values[code]
        cut = len(values) - n_test
        part = slice(code * n_test, (code + 1) * n_test)
        panels.append(
            {
                "label": panel.ids[code] if panel.column else plan.target or "series",
                "history": (times.iloc[:cut].to_numpy(), values[:cut]),
                "forecast": (times.iloc[cut:].to_numpy(), forecast[part]),
                "actual": y_test[part],
            }
        )
    if panel.column is None:
        held["history"] = panels[0]["history"]
        held["forecast"] = panels[0]["forecast"]
    else:
        held["series_panels"] = panels
        held["n_series"] = len(panel.ids)
        held["series_column"] = panel.column
    return held

"""Forecast data: the series of a panel, their lag-feature table, and the time-ordered folds.

With ``group_column`` there are several series: features are computed within each series (never
across), each series is divided by its scale (mean absolute value), and its index is a feature.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mltrainer.state.errors import InternalError, InvalidInput
from mltrainer.tools.training.engine.custom import SERIES_FEATURE, last_values, make_lag_features
from mltrainer.tools.training.plan import TrainingPlan
from mltrainer.tools.training.results import HoldoutFrame, SeriesPlot

if TYPE_CHECKING:
    import pandas as pd

MIN_POINTS = 20
PLOTTED_SERIES = 3


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


def build_panel(frame: pd.DataFrame, plan: TrainingPlan) -> Panel:
    import pandas as pd

    if plan.time_column is None or plan.target is None:
        raise InternalError("a forecast plan without a time column or target reached the engine")
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


def lags_for(n: int, season: int) -> tuple[list[int], list[int]]:
    lags = [lag for lag in (1, 2, 3, 4, 5, 6, 7, 12, 14, 24, 28, 52) if lag < n // 3]
    if season > 1 and season not in lags:
        lags = sorted([*lags, season])
    windows = [w for w in (3, 7, 14, 28) if w < n // 3]
    return lags or [1], windows or [2]


def build_table(
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


def build_folds(
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


def series_scale(values: np.ndarray) -> float:
    level = float(np.mean(np.abs(values))) if len(values) else 0.0
    return level if np.isfinite(level) and level > 1e-12 else 1.0


def holdout_frame(
    panel: Panel,
    features: list[str],
    label: str,
    n_test: int,
    y_test: np.ndarray,
    forecast: np.ndarray,
) -> HoldoutFrame:
    """History, forecast and actual values, for up to PLOTTED_SERIES series (the longest).

    ``features`` are the model's input columns: the time column, then the series column;
    ``label`` names a single series (a panel's series are named by their ids).
    """
    import pandas as pd

    test_times = [t.iloc[len(t) - n_test :] for t in panel.times]
    x_test = pd.DataFrame({features[0]: pd.concat(test_times, ignore_index=True).to_numpy()})
    if panel.column is not None:
        x_test[panel.column] = np.repeat(panel.ids, n_test)
    order = sorted(range(len(panel.ids)), key=lambda i: -len(panel.values[i]))
    series = []
    for code in order[:PLOTTED_SERIES]:
        times, values = panel.times[code], panel.values[code]
        cut = len(values) - n_test
        part = slice(code * n_test, (code + 1) * n_test)
        series.append(
            SeriesPlot(
                label=panel.ids[code] if panel.column else label,
                history_times=times.iloc[:cut].to_numpy(),
                history=values[:cut],
                forecast_times=times.iloc[cut:].to_numpy(),
                forecast=forecast[part],
                actual=y_test[part],
            )
        )
    return HoldoutFrame(
        x_test=x_test,
        y_test=y_test,
        y_pred=forecast,
        series=series,
        n_series=len(panel.ids),
        series_column=panel.column,
    )

"""Forecasting: lag features, recursive multi-step forecasts and the models that hold them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

SERIES_FEATURE = "series_id"


def make_lag_features(
    values: np.ndarray, times: pd.Series, lags: list[int], windows: list[int]
) -> pd.DataFrame:
    """Lags, rolling means/std and calendar features for each position of a single series.

    Row ``i`` uses only ``values[:i]`` (strictly the past), so it is safe for forecasting.
    """
    series = pd.Series(np.asarray(values, dtype=float))
    shifted = series.shift(1)
    columns: dict[str, Any] = {}
    for lag in lags:
        columns[f"lag_{lag}"] = series.shift(lag).to_numpy()
    for window in windows:
        columns[f"mean_{window}"] = shifted.rolling(window, min_periods=1).mean().to_numpy()
        columns[f"std_{window}"] = shifted.rolling(window, min_periods=2).std().to_numpy()
    stamp = pd.to_datetime(pd.Series(times).reset_index(drop=True), errors="coerce")
    columns.update(_calendar(stamp))
    columns["t"] = np.arange(len(series), dtype=float)
    return pd.DataFrame(columns)


def _calendar(stamp: pd.Series) -> dict[str, np.ndarray]:
    return {
        "month": stamp.dt.month.to_numpy(dtype=float),
        "dayofweek": stamp.dt.day_of_week.to_numpy(dtype=float),
        "day": stamp.dt.day.to_numpy(dtype=float),
        "hour": stamp.dt.hour.to_numpy(dtype=float),
        "dayofyear": stamp.dt.day_of_year.to_numpy(dtype=float),
    }


def next_step_features(
    tails: np.ndarray, stamps: pd.Series, positions: np.ndarray, lags: list[int], windows: list[int]
) -> pd.DataFrame:
    """The features of the next step of many series at once, as :func:`make_lag_features`.

    ``tails`` holds each series' last ``max(lags + windows)`` values (one row per series, padded
    with NaN on the left), ``stamps`` the next step's dates, ``positions`` its index in the series.
    """
    columns: dict[str, Any] = {}
    for lag in lags:
        columns[f"lag_{lag}"] = tails[:, -lag]
    for window in windows:
        part = tails[:, -window:]
        count = np.sum(~np.isnan(part), axis=1)
        total = np.nansum(part, axis=1)
        mean = np.where(count >= 1, total / np.maximum(count, 1), np.nan)
        squares = np.nansum((part - mean[:, None]) ** 2, axis=1)
        columns[f"mean_{window}"] = mean
        columns[f"std_{window}"] = np.where(
            count >= 2, np.sqrt(squares / np.maximum(count - 1, 1)), np.nan
        )
    stamp = pd.to_datetime(pd.Series(stamps).reset_index(drop=True), errors="coerce")
    columns.update(_calendar(stamp))
    columns["t"] = np.asarray(positions, dtype=float)
    return pd.DataFrame(columns)


def last_values(values: np.ndarray, width: int) -> np.ndarray:
    """The last ``width`` values, padded with NaN on the left: a row of ``tails``."""
    out = np.full(width, np.nan)
    keep = min(width, len(values))
    if keep:
        out[width - keep :] = values[len(values) - keep :]
    return out


def recursive_forecast(
    regressor: Any,
    tails: np.ndarray,
    positions: np.ndarray,
    future: list[pd.DatetimeIndex],
    lags: list[int],
    windows: list[int],
    series_codes: list[int] | None = None,
) -> np.ndarray:
    """Forecast each row of ``tails`` over its ``future`` dates, step by step, all rows at once.

    Each step's prediction becomes the next step's ``lag_1``. Values are in the scale of
    ``tails``; ``series_codes`` (for a panel) fill the series feature.
    """
    steps = len(future[0]) if future else 0
    out = np.zeros((len(tails), steps))
    for step in range(steps):
        stamps = pd.Series([dates[step] for dates in future])
        features = next_step_features(tails, stamps, positions + step, lags, windows)
        if series_codes is not None:
            features[SERIES_FEATURE] = np.asarray(series_codes, dtype=float)
        predicted = np.asarray(regressor.predict(features), dtype=float)
        out[:, step] = predicted
        tails = np.column_stack([tails[:, 1:], predicted])
    return out


class SeasonalNaive(BaseEstimator):
    """The yardstick: the value one season ago (the ``lag_<season>`` feature; ``lag_1`` if absent).

    It reads the same feature frame as the learned regressors, so a :class:`ForecastModel` can
    hold it and forecast recursively (repeating the last season) like any other model.
    """

    def __init__(self, season: int = 1) -> None:
        self.season = season

    def fit(self, X: Any = None, y: Any = None) -> SeasonalNaive:
        return self

    def predict(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        column = f"lag_{self.season}"
        out = frame[column if column in frame.columns else "lag_1"].to_numpy(dtype=float)
        if "lag_1" in frame.columns:
            out = np.where(np.isnan(out), frame["lag_1"].to_numpy(dtype=float), out)
        return out


class ChangeRegressor(BaseEstimator):
    """Learns the change from an anchor feature (``lag_1``: the last value) instead of the level.

    Trees cannot extrapolate a level they have not seen; a trending series is easier as changes.
    """

    def __init__(self, regressor: Any = None, anchor: str = "lag_1") -> None:
        self.regressor = regressor
        self.anchor = anchor

    def fit(self, X: Any, y: Any) -> ChangeRegressor:
        from sklearn.base import clone

        frame = pd.DataFrame(X)
        change = np.asarray(y, dtype=float) - frame[self.anchor].to_numpy(dtype=float)
        self.regressor_ = clone(self.regressor).fit(frame, change)
        return self

    def predict(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        change = np.asarray(self.regressor_.predict(frame), dtype=float)
        return change + frame[self.anchor].to_numpy(dtype=float)


class MeanRegressor(BaseEstimator):
    """The mean of several regressors' predictions (a forecast blend), each fitted on the data."""

    def __init__(self, regressors: list[Any] | None = None) -> None:
        self.regressors = regressors

    def fit(self, X: Any, y: Any) -> MeanRegressor:
        from sklearn.base import clone

        self.regressors_ = [clone(r).fit(X, y) for r in self.regressors or []]
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.mean([np.asarray(r.predict(X), dtype=float) for r in self.regressors_], axis=0)


class ForecastModel(BaseEstimator):
    """A recursive one-step forecaster of one series, or of several with one global model.

    ``predict`` takes a frame with the time column (and the series column for several series);
    dates after a series' last training date are forecast step by step (each prediction becomes
    the next step's lag), dates inside its history get one-step-ahead fitted values. Each series
    is modelled divided by its scale (mean absolute value), with its index as ``series_id``.
    """

    def __init__(
        self,
        time_column: str,
        regressor: Any,
        lags: list[int],
        windows: list[int],
        history_times: list[str],
        history_values: list[float],
        freq: str | None,
        series_column: str | None = None,
        series_ids: list[str] | None = None,
        history_series: list[str] | None = None,
        scales: list[float] | None = None,
    ) -> None:
        self.time_column = time_column
        self.regressor = regressor
        self.lags = lags
        self.windows = windows
        self.history_times = history_times
        self.history_values = history_values
        self.freq = freq
        self.series_column = series_column
        self.series_ids = series_ids
        self.history_series = history_series
        self.scales = scales

    def fit(self, X: Any = None, y: Any = None) -> ForecastModel:
        return self

    # Models saved before several series were supported lack the newer attributes.
    def _panel(self) -> bool:
        return getattr(self, "series_column", None) is not None

    def _ids(self) -> list[str]:
        return list(getattr(self, "series_ids", None) or [""])

    def _scales(self) -> np.ndarray:
        scales = getattr(self, "scales", None)
        return np.asarray(scales if scales else [1.0] * len(self._ids()), dtype=float)

    def _histories(self) -> list[tuple[pd.Series, np.ndarray]]:
        times = pd.to_datetime(pd.Series(self.history_times))
        values = np.asarray(self.history_values, dtype=float)
        labels = getattr(self, "history_series", None)
        if not self._panel() or labels is None:
            return [(times, values)]
        labels = np.asarray(labels, dtype=object)
        out = []
        for sid in self._ids():
            mask = labels == sid
            out.append((times[mask].reset_index(drop=True), values[mask]))
        return out

    def _future_times(self, last: pd.Timestamp, steps: int) -> pd.DatetimeIndex:
        freq = self.freq or "D"
        return pd.date_range(last, periods=steps + 1, freq=freq)[1:]

    def _with_series(self, features: pd.DataFrame, codes: Any) -> pd.DataFrame:
        if self._panel():
            features[SERIES_FEATURE] = np.asarray(codes, dtype=float)
        return features

    def _forecast_codes(
        self, codes: list[int], steps: int
    ) -> tuple[np.ndarray, list[pd.DatetimeIndex]]:
        """Recursive forecasts of the series ``codes`` for ``steps`` steps, all series at once."""
        histories, scales = self._histories(), self._scales()
        width = max(self.lags + self.windows)
        tails = np.full((len(codes), width), np.nan)
        positions = np.zeros(len(codes))
        future = []
        for row, code in enumerate(codes):
            times, values = histories[code]
            tails[row] = last_values(values / scales[code], width)
            positions[row] = len(values)
            future.append(self._future_times(times.iloc[-1], steps))
        out = recursive_forecast(
            self.regressor,
            tails,
            positions,
            future,
            self.lags,
            self.windows,
            codes if self._panel() else None,
        )
        return out * scales[codes][:, None], future

    def forecast(self, steps: int) -> pd.DataFrame:
        """The next ``steps`` dates after each series' history and their forecasts."""
        codes = list(range(len(self._ids())))
        values, future = self._forecast_codes(codes, steps)
        frame = pd.DataFrame({self.time_column: pd.DatetimeIndex(np.concatenate(future))})
        if self._panel():
            assert self.series_column is not None
            frame[self.series_column] = np.repeat(self._ids(), steps)
        frame["forecast"] = values.ravel()
        return frame

    def _codes_of(self, frame: pd.DataFrame) -> np.ndarray:
        if not self._panel():
            return np.zeros(len(frame), dtype=int)
        column, ids = self.series_column, self._ids()
        if column not in frame.columns:
            raise ValueError(f"predict needs the series column {column!r}")
        labels = frame[column].astype(str).to_numpy()
        index = {sid: code for code, sid in enumerate(ids)}
        unknown = sorted({label for label in labels if label not in index})
        if unknown:
            shown = ", ".join(ids[:10]) + (" ..." if len(ids) > 10 else "")
            raise ValueError(
                f"unknown series id(s) in {column!r}: {unknown[:5]}; the model knows: {shown}"
            )
        return np.asarray([index[label] for label in labels], dtype=int)

    def predict(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        wanted = pd.to_datetime(frame[self.time_column], errors="coerce", format="mixed")
        row_codes = self._codes_of(frame)
        histories, scales = self._histories(), self._scales()
        needed = sorted(set(row_codes.tolist()))
        steps: dict[int, int] = {}
        for code in needed:
            last = histories[code][0].iloc[-1]
            later = wanted[(row_codes == code) & (wanted > last).to_numpy()]
            if len(later):
                step = self._future_times(last, 1)[0] - last
                count = int(np.ceil((later.max() - last) / step)) if step > pd.Timedelta(0) else 1
                steps[code] = max(count, 1)
        future_values: dict[int, tuple[pd.DatetimeIndex, np.ndarray]] = {}
        if steps:
            ahead = sorted(steps)
            values, dates = self._forecast_codes(ahead, max(steps.values()))
            for row, code in enumerate(ahead):
                future_values[code] = (dates[row], values[row])
        parts = [
            self._with_series(
                make_lag_features(
                    histories[code][1] / scales[code], histories[code][0], self.lags, self.windows
                ),
                np.full(len(histories[code][1]), code),
            )
            for code in needed
        ]
        fitted = (
            np.asarray(self.regressor.predict(pd.concat(parts, ignore_index=True)), dtype=float)
            if parts
            else np.zeros(0)
        )
        out = np.full(len(frame), np.nan)
        offset = 0
        for code in needed:
            times = histories[code][0]
            known_times = times.to_numpy()
            known = fitted[offset : offset + len(times)] * scales[code]
            offset += len(times)
            if code in future_values:
                dates, values = future_values[code]
                known_times = np.concatenate([known_times, dates.to_numpy()])
                known = np.concatenate([known, values])
            rows = np.flatnonzero(row_codes == code)
            asked = wanted.iloc[rows]
            # a date between known dates gets the nearest earlier known value
            where = np.searchsorted(known_times, asked.to_numpy(), side="right") - 1
            valid = (where >= 0) & asked.notna().to_numpy()
            out[rows[valid]] = known[where[valid]]
        return out

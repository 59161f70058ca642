"""Every custom class that ends up inside a fitted model, in one self-contained module.

A standalone ``predict.py`` inlines this file's source, so it imports only numpy, pandas, scipy,
scikit-learn and xgboost -- never anything from this project. Saved models are loaded with
``skops.io.load(path, trusted=trusted_types(path))``; XGBoost boosters are kept in XGBoost's own
``ubj`` format inside :class:`XGBModel`'s state, never pickled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

MODULE = __name__

# Types a model file made by this project may contain beyond skops' defaults.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


def trusted_types(path: Any) -> list[str]:
    """The untrusted types in a model file that this project itself writes, for ``skops.io.load``.

    Only types from scikit-learn, numpy, scipy and this module are accepted; anything else is left
    out, so loading such a file fails loudly instead of running foreign code.
    """
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    ours = tuple(f"{name}." for name in {MODULE, "custom", "__main__"})
    return [t for t in untrusted if t.startswith(TRUSTED_PREFIXES + ours)]


class DatetimeFeatures(BaseEstimator, TransformerMixin):
    """Calendar features (year, month, day, weekday, hour, day of year, epoch days) per column."""

    def fit(self, X: Any, y: Any = None) -> DatetimeFeatures:
        self.n_columns_ = pd.DataFrame(X).shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        parts = []
        for column in frame.columns:
            values = pd.to_datetime(frame[column], errors="coerce", utc=True, format="mixed")
            parts += [
                values.dt.year,
                values.dt.month,
                values.dt.day,
                values.dt.day_of_week,
                values.dt.hour,
                values.dt.day_of_year,
                (values - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds() / 86400.0,
            ]
        if not parts:
            return np.zeros((len(frame), 0))
        return np.column_stack([np.asarray(p, dtype=float) for p in parts])


class TextTfidf(BaseEstimator, TransformerMixin):
    """TF-IDF of one free-text column, tolerant of missing values."""

    def __init__(self, max_features: int = 20000, ngram_max: int = 2, min_df: int = 2) -> None:
        self.max_features = max_features
        self.ngram_max = ngram_max
        self.min_df = min_df

    def _text(self, X: Any) -> list[str]:
        frame = pd.DataFrame(X)
        joined = frame.astype("string").fillna("").agg(" ".join, axis=1)
        return [str(t) for t in joined]

    def fit(self, X: Any, y: Any = None) -> TextTfidf:
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = self._text(X)
        min_df = self.min_df if len(texts) >= 50 else 1
        self.vectorizer_ = TfidfVectorizer(
            max_features=self.max_features,
            ngram_range=(1, self.ngram_max),
            min_df=min_df,
            sublinear_tf=True,
            dtype=np.float32,
        )
        try:
            self.vectorizer_.fit(texts)
        except ValueError:  # only stop words or empty strings: fall back to characters
            self.vectorizer_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=1)
            self.vectorizer_.fit([t or " " for t in texts])
        return self

    def transform(self, X: Any) -> Any:
        return self.vectorizer_.transform(self._text(X))


class XGBModel(BaseEstimator):
    """XGBoost through its native API, with early stopping and a wall-clock deadline.

    The booster is stored as XGBoost ``ubj`` bytes in the object's state, so skops never has to
    know XGBoost's classes.
    """

    def __init__(
        self,
        objective: str = "reg:squarederror",
        num_class: int = 0,
        n_estimators: int = 2000,
        learning_rate: float = 0.1,
        max_depth: int = 6,
        min_child_weight: float = 1.0,
        subsample: float = 1.0,
        colsample_bytree: float = 1.0,
        reg_lambda: float = 1.0,
        reg_alpha: float = 0.0,
        gamma: float = 0.0,
        max_bin: int = 256,
        early_stopping_rounds: int = 50,
        n_jobs: int = 2,
        random_state: int = 0,
    ) -> None:
        self.objective = objective
        self.num_class = num_class
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.gamma = gamma
        self.max_bin = max_bin
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "objective": self.objective,
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "lambda": self.reg_lambda,
            "alpha": self.reg_alpha,
            "gamma": self.gamma,
            "max_bin": self.max_bin,
            "tree_method": "hist",
            # Histograms of 32 nodes kept, not all: deep trees on many columns otherwise hold
            # tens of MB (the model is the same; only rebuilt histograms cost a little time).
            "max_cached_hist_node": 32,
            "nthread": self.n_jobs,
            "seed": self.random_state,
            "verbosity": 0,
        }
        if self.objective.startswith("multi:"):
            params["num_class"] = self.num_class
        return params

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        eval_set: tuple[Any, Any] | None = None,
        deadline: float | None = None,
    ) -> XGBModel:
        import time

        import xgboost as xgb

        # Quantised on the way in: the float copy a DMatrix keeps beside its histogram index
        # is never made (the same model, ~8 MB less per fit on 30k rows).
        train = xgb.QuantileDMatrix(
            X,
            label=np.asarray(y),
            weight=sample_weight,
            missing=np.nan,
            max_bin=self.max_bin,
            nthread=self.n_jobs,
        )
        evals = []
        if eval_set is not None:
            valid = xgb.QuantileDMatrix(
                eval_set[0],
                label=np.asarray(eval_set[1]),
                missing=np.nan,
                ref=train,
                nthread=self.n_jobs,
            )
            evals = [(valid, "v")]

        class _Deadline(xgb.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                return deadline is not None and time.monotonic() > deadline

        callbacks: list[Any] = [_Deadline()]
        if evals and self.early_stopping_rounds:
            callbacks.append(
                xgb.callback.EarlyStopping(rounds=self.early_stopping_rounds, save_best=True)
            )
        booster = xgb.train(
            self._params(),
            train,
            self.n_estimators,
            evals=evals,
            callbacks=callbacks,
            verbose_eval=False,
        )
        self.best_iteration_ = int(booster.num_boosted_rounds())
        self._set_booster(booster)
        return self

    def _set_booster(self, booster: Any) -> None:
        # The trained booster holds its training caches: a lean copy is loaded from its saved
        # bytes, and the bytes are made again only when the model is saved (``__getstate__``).
        import xgboost as xgb

        lean = xgb.Booster(params={"nthread": self.n_jobs})
        lean.load_model(booster.save_raw("ubj"))
        self._booster: Any = lean
        self.__dict__.pop("booster_raw_", None)

    def booster(self) -> Any:
        booster = getattr(self, "_booster", None)
        if booster is None:
            import xgboost as xgb

            booster = xgb.Booster(params={"nthread": self.n_jobs})
            booster.load_model(bytearray(self.booster_raw_))
            self._booster = booster
        return booster

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        booster = state.pop("_booster", None)
        if booster is not None:
            state["booster_raw_"] = bytes(booster.save_raw("ubj"))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._booster = None

    def raw_predict(self, X: Any) -> np.ndarray:
        # In place: no DMatrix copy of the rows is made.
        return np.asarray(self.booster().inplace_predict(X, missing=np.nan))

    @property
    def feature_importances_(self) -> np.ndarray:
        scores = self.booster().get_score(importance_type="total_gain")
        n = self.booster().num_features()
        out = np.zeros(n)
        for key, value in scores.items():
            index = int(key[1:]) if key.startswith("f") and key[1:].isdigit() else None
            if index is not None and index < n:
                out[index] = value
        total = out.sum()
        return out / total if total > 0 else out


class XGBClassifierModel(XGBModel):
    def predict_proba(self, X: Any) -> np.ndarray:
        raw = self.raw_predict(X)
        if raw.ndim == 1:
            return np.column_stack([1.0 - raw, raw])
        return raw

    def predict(self, X: Any) -> np.ndarray:
        return np.argmax(self.predict_proba(X), axis=1)


class XGBRegressorModel(XGBModel):
    def predict(self, X: Any) -> np.ndarray:
        return self.raw_predict(X)


class BlendModel(BaseEstimator):
    """The final model: a weighted blend of members, each a bag of fitted pipelines.

    Takes the raw feature frame; ``classes_`` holds the original labels (classification), and
    ``predict`` returns them.
    """

    def __init__(
        self,
        task: str,
        features: list[str],
        members: list[list[Any]],
        weights: list[float],
        classes: list[Any] | None = None,
        positive_index: int = 1,
    ) -> None:
        self.task = task
        self.features = features
        self.members = members
        self.weights = weights
        self.classes = classes
        self.positive_index = positive_index

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
        return self._blend(X, proba=True)

    def predict(self, X: Any) -> np.ndarray:
        if self.task in ("binary", "multiclass"):
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return self._blend(X, proba=False)


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


SERIES_FEATURE = "series_id"


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


class Stringify(BaseEstimator, TransformerMixin):
    """Categories as strings (missing as ``"<NA>"``), so encoders see one uniform type."""

    def fit(self, X: Any, y: Any = None) -> Stringify:
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        out = frame.astype("string").fillna("<NA>").astype(object)
        return out.to_numpy()

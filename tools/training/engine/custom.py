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

        train = xgb.DMatrix(X, label=np.asarray(y), weight=sample_weight, missing=np.nan)
        evals = []
        if eval_set is not None:
            evals = [(xgb.DMatrix(eval_set[0], label=np.asarray(eval_set[1]), missing=np.nan), "v")]

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
        import xgboost as xgb

        return np.asarray(self.booster().predict(xgb.DMatrix(X, missing=np.nan)))

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
    columns["month"] = stamp.dt.month.to_numpy(dtype=float)
    columns["dayofweek"] = stamp.dt.day_of_week.to_numpy(dtype=float)
    columns["day"] = stamp.dt.day.to_numpy(dtype=float)
    columns["hour"] = stamp.dt.hour.to_numpy(dtype=float)
    columns["dayofyear"] = stamp.dt.day_of_year.to_numpy(dtype=float)
    columns["t"] = np.arange(len(series), dtype=float)
    return pd.DataFrame(columns)


class ForecastModel(BaseEstimator):
    """A recursive one-step forecaster of a single series from its own lags and the calendar.

    ``predict`` takes a frame with the time column; dates after the last training date are
    forecast step by step (each prediction becomes the next step's lag), dates inside the history
    get one-step-ahead fitted values.
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
    ) -> None:
        self.time_column = time_column
        self.regressor = regressor
        self.lags = lags
        self.windows = windows
        self.history_times = history_times
        self.history_values = history_values
        self.freq = freq

    def fit(self, X: Any = None, y: Any = None) -> ForecastModel:
        return self

    def _future_times(self, last: pd.Timestamp, steps: int) -> pd.DatetimeIndex:
        freq = self.freq or "D"
        return pd.date_range(last, periods=steps + 1, freq=freq)[1:]

    def forecast(self, steps: int) -> pd.DataFrame:
        """The next ``steps`` dates after the history and their forecasts."""
        times = pd.to_datetime(pd.Series(self.history_times))
        values = list(self.history_values)
        future = self._future_times(times.iloc[-1], steps)
        all_times = pd.concat([times, pd.Series(future)], ignore_index=True)
        n = len(values)
        for step in range(steps):
            position = n + step
            window = [*values, np.nan]
            feats = make_lag_features(
                np.asarray(window), all_times.iloc[: position + 1], self.lags, self.windows
            )
            values.append(float(self.regressor.predict(feats.iloc[[-1]])[0]))
        return pd.DataFrame({self.time_column: future, "forecast": values[n:]})

    def predict(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        wanted = pd.to_datetime(frame[self.time_column], errors="coerce")
        history = pd.to_datetime(pd.Series(self.history_times))
        last = history.iloc[-1]
        lookup: dict[pd.Timestamp, float] = {}
        later = wanted[wanted > last]
        if len(later):
            future = self._future_times(last, 1)
            step = future[0] - last if len(future) else pd.Timedelta(days=1)
            steps = int(np.ceil((later.max() - last) / step)) if step > pd.Timedelta(0) else 1
            forecast = self.forecast(max(steps, 1))
            for t, v in zip(forecast[self.time_column], forecast["forecast"], strict=True):
                lookup[pd.Timestamp(t)] = float(v)
        feats = make_lag_features(np.asarray(self.history_values), history, self.lags, self.windows)
        fitted = self.regressor.predict(feats)
        for t, v in zip(history, fitted, strict=True):
            lookup.setdefault(pd.Timestamp(t), float(v))
        out = []
        for t in wanted:
            if t in lookup:
                out.append(lookup[t])
            else:  # between known dates: the nearest earlier known value
                earlier = [k for k in lookup if k <= t]
                out.append(lookup[max(earlier)] if earlier else float("nan"))
        return np.asarray(out, dtype=float)


class Stringify(BaseEstimator, TransformerMixin):
    """Categories as strings (missing as ``"<NA>"``), so encoders see one uniform type."""

    def fit(self, X: Any, y: Any = None) -> Stringify:
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        out = frame.astype("string").fillna("<NA>").astype(object)
        return out.to_numpy()

"""Column transformers the preprocessing puts into fitted pipelines: dates, text, categories."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin


class DatetimeFeatures(BaseEstimator, TransformerMixin):
    """Date columns as numbers.

    Without a time axis (``axis`` None): year, month, day, weekday, hour, day of year and epoch
    days per column. With one (``axis``: its position among the columns) no absolute date is
    given, since trees cannot carry a date's level past the last one they saw: the axis gives
    its ``calendar`` parts (and, with ``elapsed``, days since the first fitted date: a trend for
    models that extrapolate), every other date its days before the axis, month and weekday.
    """

    def __init__(
        self, axis: int | None = None, calendar: tuple[str, ...] = (), elapsed: bool = False
    ) -> None:
        self.axis = axis
        self.calendar = calendar
        self.elapsed = elapsed

    @staticmethod
    def _dates(frame: pd.DataFrame) -> list[pd.Series]:
        return [
            pd.to_datetime(frame[c], errors="coerce", utc=True, format="mixed")
            for c in frame.columns
        ]

    def fit(self, X: Any, y: Any = None) -> DatetimeFeatures:
        frame = pd.DataFrame(X)
        self.n_columns_ = frame.shape[1]
        axis = getattr(self, "axis", None)
        if axis is not None and getattr(self, "elapsed", False):
            first = self._dates(frame)[axis].min()
            self.origin_ = float(_epoch_days(pd.Series([first]))[0]) if pd.notna(first) else 0.0
        return self

    def transform(self, X: Any) -> np.ndarray:
        dates = self._dates(pd.DataFrame(X))
        axis = getattr(self, "axis", None)
        parts: list[Any] = []
        if axis is None:
            for values in dates:
                parts += [
                    values.dt.year,
                    values.dt.month,
                    values.dt.day,
                    values.dt.day_of_week,
                    values.dt.hour,
                    values.dt.day_of_year,
                    _epoch_days(values),
                ]
        else:
            anchor = dates[axis]
            parts += [_calendar_part(anchor, name) for name in self.calendar]
            if getattr(self, "elapsed", False):
                parts.append(_epoch_days(anchor) - getattr(self, "origin_", 0.0))
            for index, values in enumerate(dates):
                if index != axis:
                    before = (anchor - values).dt.total_seconds() / 86400.0
                    parts += [before, values.dt.month, values.dt.day_of_week]
        if not parts:
            return np.zeros((len(dates[0]) if dates else 0, 0))
        return np.column_stack([np.asarray(p, dtype=float) for p in parts])


def _epoch_days(values: pd.Series) -> np.ndarray:
    """Days since 1970 (fractional), NaN where the date is missing."""
    seconds = (values - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
    return np.asarray(seconds / 86400.0, dtype=float)


def _calendar_part(values: pd.Series, name: str) -> pd.Series:
    accessor = values.dt
    table = {
        "year": accessor.year,
        "hour": accessor.hour,
        "weekday": accessor.day_of_week,
        "day": accessor.day,
        "dayofyear": accessor.day_of_year,
        "month": accessor.month,
    }
    return table[name]


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


class AsFloat(BaseEstimator, TransformerMixin):
    """Numeric and true/false columns as one float array, missing values as NaN. numpy would
    first turn a frame of floats and booleans into Python objects, 32 bytes a cell (115 MB
    for 75k rows x 41 columns, against this array's 24 MB).

    ``dtype="float32"`` halves it again, for trees (XGBoost, random and extra trees split on
    float32 values whatever they are given, and make a float32 copy of a float64 array) and for
    the scaled columns of classifiers."""

    def __init__(self, dtype: str = "float64") -> None:
        self.dtype = dtype

    def fit(self, X: Any, y: Any = None) -> AsFloat:
        return self

    def __sklearn_is_fitted__(self) -> bool:  # nothing to learn: a pipeline may end with it
        return True

    def transform(self, X: Any) -> np.ndarray:
        dtype = getattr(self, "dtype", "float64")  # a model saved before the parameter existed
        return pd.DataFrame(X).to_numpy(dtype=dtype, na_value=np.nan)


class Stringify(BaseEstimator, TransformerMixin):
    """Categories as strings (missing as ``"<NA>"``), so encoders see one uniform type."""

    def fit(self, X: Any, y: Any = None) -> Stringify:
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        out = frame.astype("string").fillna("<NA>").astype(object)
        return out.to_numpy()

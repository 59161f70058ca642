"""Column transformers the preprocessing puts into fitted pipelines: dates, text, categories."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin


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


class Stringify(BaseEstimator, TransformerMixin):
    """Categories as strings (missing as ``"<NA>"``), so encoders see one uniform type."""

    def fit(self, X: Any, y: Any = None) -> Stringify:
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        out = frame.astype("string").fillna("<NA>").astype(object)
        return out.to_numpy()

"""Column preprocessing per family style, as an unfitted ColumnTransformer.

It is always fitted inside a fold (or on the final training rows), never on validation data.
Trees get ordinal codes first (so HistGradientBoosting can treat them as categorical), target
encoding for high-cardinality columns, calendar features and a small TF-IDF; linear models and
k-NN get imputation with missing indicators, scaling, one-hot codes and a larger TF-IDF.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mltrainer.tools.training.plan import ColumnPlan


def build_preprocessor(
    columns: list[ColumnPlan],
    style: str,
    task: str,
    seed: int,
    calendar: tuple[str, ...] = (),
    elapsed: bool = False,
) -> tuple[Any, int]:
    """The transformer and how many leading output columns are categorical codes.

    ``calendar``: the parts of the time axis (the column marked ``time_axis``) to use;
    ``elapsed``: days since its first date as well.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import (
        OneHotEncoder,
        OrdinalEncoder,
        TargetEncoder,
    )

    from mltrainer.tools.training.engine.custom import (
        AsFloat,
        DatetimeFeatures,
        Stringify,
        TextTfidf,
    )

    folds = KFold(n_splits=5, shuffle=True, random_state=seed)
    by_kind: dict[str, list[str]] = {}
    for column in columns:
        by_kind.setdefault(column.kind, []).append(column.name)
    target_type = (
        "continuous" if task == "regression" else ("binary" if task == "binary" else "multiclass")
    )
    parts: list[tuple[str, Any, Any]] = []
    n_categorical = 0
    dates = by_kind.get("datetime", [])
    axis = next((i for i, c in enumerate(dates) if c in _axes(columns)), None)
    date_features = DatetimeFeatures(axis=axis, calendar=calendar, elapsed=elapsed)
    categorical = by_kind.get("categorical", [])
    if style == "tree":  # one float32 array (see AsFloat): half the memory of every fold's copy
        if categorical:
            parts.append(
                (
                    "cat",
                    make_pipeline(
                        Stringify(),
                        OrdinalEncoder(
                            handle_unknown="use_encoded_value",
                            unknown_value=np.nan,
                            encoded_missing_value=np.nan,
                            dtype=np.float32,
                        ),
                    ),
                    categorical,
                )
            )
            n_categorical = len(categorical)
        if by_kind.get("numeric"):
            parts.append(("num", AsFloat("float32"), by_kind["numeric"]))
        if by_kind.get("high_cardinality"):
            encoder = TargetEncoder(target_type=target_type, cv=folds)
            parts.append(
                (
                    "high",
                    make_pipeline(Stringify(), encoder, AsFloat("float32")),
                    by_kind["high_cardinality"],
                )
            )
        if dates:
            parts.append(("date", make_pipeline(date_features, AsFloat("float32")), dates))
        for i, name in enumerate(by_kind.get("text", [])):
            parts.append((f"text{i}", TextTfidf(max_features=300, ngram_max=1), [name]))
    else:
        # Float32 but for regression, whose solvers (Ridge) would cast the target to the
        # columns' type: half the memory of every copy the transform makes (the numbers of
        # 67.5k rows x 40 columns with their missing-value flags: 13 MB, not 25).
        dtype = "float64" if task == "regression" else "float32"
        if by_kind.get("numeric"):
            parts.append(
                (
                    "num",
                    make_pipeline(
                        AsFloat(dtype),
                        SimpleImputer(strategy="median", add_indicator=True),
                        _scaler(),
                    ),
                    by_kind["numeric"],
                )
            )
        if categorical:
            parts.append(
                (
                    "cat",
                    make_pipeline(
                        Stringify(),
                        OneHotEncoder(
                            handle_unknown="infrequent_if_exist", min_frequency=5, dtype=dtype
                        ),
                    ),
                    categorical,
                )
            )
        if by_kind.get("high_cardinality"):
            encoded = (  # no target to encode against: the frequent values, one-hot
                [
                    OneHotEncoder(
                        handle_unknown="infrequent_if_exist", max_categories=20, dtype=dtype
                    )
                ]
                if task == "clustering"
                else [TargetEncoder(target_type=target_type, cv=folds), AsFloat(dtype)]
            )
            parts.append(
                (
                    "high",
                    make_pipeline(Stringify(), *encoded, _scaler(with_mean=task != "clustering")),
                    by_kind["high_cardinality"],
                )
            )
        if dates:
            parts.append(
                (
                    "date",
                    make_pipeline(
                        date_features,
                        AsFloat(dtype),
                        SimpleImputer(strategy="median", keep_empty_features=True),
                        _scaler(),
                    ),
                    dates,
                )
            )
        for i, name in enumerate(by_kind.get("text", [])):
            parts.append((f"text{i}", TextTfidf(max_features=20000, ngram_max=2), [name]))
    has_text = bool(by_kind.get("text"))
    transformer = ColumnTransformer(
        parts,
        remainder="drop",
        sparse_threshold=0.3 if (has_text and style == "linear") else 0.0,
        n_jobs=None,
    )
    return transformer, n_categorical


def _scaler(with_mean: bool = True) -> Any:
    """Scaling in place: the step before it always makes a new array, so a copy of it is one
    too many (the numbers of 67.5k rows x 40 columns with their missing-value flags: 13 MB)."""
    from sklearn.preprocessing import StandardScaler

    return StandardScaler(copy=False, with_mean=with_mean)


def _axes(columns: list[ColumnPlan]) -> set[str]:
    return {c.name for c in columns if c.time_axis}

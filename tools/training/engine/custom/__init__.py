"""Every custom class that ends up inside a fitted model, under one stable module name.

skops records a class by its ``__module__`` and name, and finds it again by importing that
module. However these classes are spread over files, each says it lives here, in
``mltrainer.tools.training.engine.custom`` (which re-exports it), so a model saved before or
after a reorganisation loads alike (tests/test_layout.py loads models saved by earlier versions).

A standalone ``predict.py`` inlines the sources of ``SOURCE_MODULES`` into one module of this
name, so each of them imports only numpy, pandas, scikit-learn and xgboost -- never this project,
nor one another -- and no two define the same top-level name.
"""

from __future__ import annotations

from mltrainer.tools.training.engine.custom.blend import BlendModel, calibrate_proba
from mltrainer.tools.training.engine.custom.boosting import (
    XGBClassifierModel,
    XGBModel,
    XGBRegressorModel,
)
from mltrainer.tools.training.engine.custom.columns import (
    AsFloat,
    DatetimeFeatures,
    Stringify,
    TextTfidf,
)
from mltrainer.tools.training.engine.custom.hist import HGBClassifierModel, HGBRegressorModel
from mltrainer.tools.training.engine.custom.series import (
    SERIES_FEATURE,
    ChangeRegressor,
    ForecastModel,
    MeanRegressor,
    SeasonalNaive,
    last_values,
    make_lag_features,
    next_step_features,
    recursive_forecast,
)
from mltrainer.tools.training.engine.custom.target import TransformedTarget

# In the order the standalone predict.py runs them.
SOURCE_MODULES = ("columns", "boosting", "hist", "blend", "series", "target")

# The classes a saved model may hold (and the one base class they share).
CLASSES: tuple[type, ...] = (
    AsFloat,
    BlendModel,
    ChangeRegressor,
    DatetimeFeatures,
    ForecastModel,
    HGBClassifierModel,
    HGBRegressorModel,
    MeanRegressor,
    SeasonalNaive,
    Stringify,
    TextTfidf,
    TransformedTarget,
    XGBClassifierModel,
    XGBModel,
    XGBRegressorModel,
)
for _cls in CLASSES:
    _cls.__module__ = __name__

__all__ = [
    "CLASSES",
    "SERIES_FEATURE",
    "SOURCE_MODULES",
    "AsFloat",
    "BlendModel",
    "ChangeRegressor",
    "DatetimeFeatures",
    "ForecastModel",
    "HGBClassifierModel",
    "HGBRegressorModel",
    "MeanRegressor",
    "SeasonalNaive",
    "Stringify",
    "TextTfidf",
    "TransformedTarget",
    "XGBClassifierModel",
    "XGBModel",
    "XGBRegressorModel",
    "calibrate_proba",
    "last_values",
    "make_lag_features",
    "next_step_features",
    "recursive_forecast",
]

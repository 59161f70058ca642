"""A small, honest trainer: one leakage-safe Pipeline, a stratified holdout score.

The AutoML engine (``tools.training.automl``) supersedes it; it remains the fallback
when the engine is not available.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tools.errors import InvalidInput
from tools.training.request import TrainRequest

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}


def infer_task(y: pd.Series) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        return "binary" if y.nunique() == 2 else "multiclass"
    distinct = y.nunique()
    if distinct == 2:
        return "binary"
    if pd.api.types.is_integer_dtype(y) and distinct <= 20:
        return "multiclass"
    return "regression"


def build_pipeline(X: pd.DataFrame, task: str, seed: int) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    numeric = [c for c in X.columns if X[c].dtype.kind in "iuf"]
    categorical = [c for c in X.columns if c not in numeric]
    encode = make_pipeline(
        SimpleImputer(strategy="most_frequent"),
        OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
        ),
    )
    columns = ColumnTransformer(
        [("num", "passthrough", numeric), ("cat", encode, categorical)],
        verbose_feature_names_out=False,
    )
    flags = [False] * len(numeric) + [True] * len(categorical)
    model_cls = (
        HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    )
    model = model_cls(categorical_features=flags or None, random_state=seed)
    return Pipeline([("columns", columns), ("model", model)])


def score(metric: str, estimator: Any, X: pd.DataFrame, y: pd.Series) -> float:
    from sklearn.metrics import get_scorer

    return float(get_scorer(metric)(estimator, X, y))


def fit_simple(frame: pd.DataFrame, request: TrainRequest) -> dict[str, Any]:
    """Fit and score; return the refitted estimator with what is known of it."""
    from sklearn.model_selection import train_test_split

    target = request.target
    if target is None:
        raise InvalidInput("This trainer needs a target column.", next_step="Pass target=...")
    frame = frame.dropna(subset=[target])
    y = frame[target]
    X = frame.drop(columns=[target, *[c for c in request.exclude_columns if c in frame.columns]])
    task = request.task if request.task != "auto" else infer_task(y)
    if task in ("binary", "multiclass"):
        y = y.astype(str)
    metric = request.metric or DEFAULT_METRIC.get(task, "accuracy")
    stratify = y if task != "regression" and y.value_counts().min() >= 2 else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=request.seed, stratify=stratify
    )
    estimator = build_pipeline(X, task, request.seed).fit(X_train, y_train)
    holdout = score(metric, estimator, X_test, y_test)
    final = build_pipeline(X, task, request.seed).fit(X, y)
    classes = [str(c) for c in final.classes_] if task != "regression" else None
    return {
        "estimator": final,
        "task": task,
        "metric": metric,
        "score": holdout,
        "features": list(X.columns),
        "classes": classes,
        "name": "hist_gradient_boosting",
    }

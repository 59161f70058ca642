"""What a caller asks of training: the validated request every layer shares."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, Field

# The deep-learning tasks (tools/deep) train a pretrained network from a rendered template on a
# GPU runtime; text_classification is one of them when a gpu or a backbone is asked for.
DeepTaskName = Literal[
    "image_classification",
    "image_regression",
    "object_detection",
    "token_classification",
    "summarization",
    "translation",
    "text_generation",
]
DEEP_TASKS: tuple[str, ...] = get_args(DeepTaskName)
Task = Literal[
    "auto",
    "binary",
    "multiclass",
    "regression",
    "forecast",
    "text_classification",
    "clustering",
    DeepTaskName,
]
RuntimeChoice = Literal["local", "modal", "kaggle"]
Validation = Literal[
    "auto", "holdout", "kfold", "stratified_kfold", "group_kfold", "time_series", "repeated_kfold"
]
# The model families the engine can train (engine/families.py), and other names for them.
MODEL_FAMILIES = (
    "hist_gradient_boosting",
    "xgboost",
    "linear",
    "extra_trees",
    "random_forest",
    "knn",
)
FAMILY_ALIASES = {
    "hgb": "hist_gradient_boosting",
    "histgradientboosting": "hist_gradient_boosting",
    "gbm": "hist_gradient_boosting",
    "gradient_boosting": "hist_gradient_boosting",
    "xgb": "xgboost",
    "rf": "random_forest",
    "randomforest": "random_forest",
    "et": "extra_trees",
    "extratrees": "extra_trees",
    "logistic": "linear",
    "logistic_regression": "linear",
    "ridge": "linear",
    "lr": "linear",
    "linear_regression": "linear",
    "k-nn": "knn",
    "kneighbors": "knn",
    "nearest_neighbors": "knn",
}

# The metrics by task (engine/metrics.py computes them), and other names for them.
CLASSIFICATION_METRICS = (
    "roc_auc",
    "log_loss",
    "accuracy",
    "balanced_accuracy",
    "f1",
    "precision",
    "recall",
)
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape")
DEFAULT_METRIC = {
    "binary": "roc_auc",
    "multiclass": "log_loss",
    "text_classification": "log_loss",
    "regression": "r2",
    "forecast": "rmse",
    "clustering": "silhouette",
}
METRIC_ALIASES = {
    "auc": "roc_auc",
    "roc-auc": "roc_auc",
    "logloss": "log_loss",
    "neg_log_loss": "log_loss",
    "acc": "accuracy",
    "f1_score": "f1",
    "f1_macro": "f1",
    "mse": "rmse",
    "neg_root_mean_squared_error": "rmse",
    "root_mean_squared_error": "rmse",
    "mean_absolute_error": "mae",
    "r_squared": "r2",
}

# The budget's promise (#17): a call ends within time_budget_s and this share more, from the
# call to the final model (tools/jobs/train.py's clock, the engine's guaranteed candidate).
BUDGET_OVERRUN = 0.1
# ... from this budget on (the shortest the promise names): on a shorter one the stages after
# the fit alone take 3-5 s, and the engine keeps three quarters of it whatever the start.
PROMISE_FROM_S = 15


class TrainRequest(BaseModel):
    dataset: str = Field(description="The dataset as given by the caller (path, dataset_id, ref).")
    target: str | None = Field(default=None, description="Target column; None only for clustering.")
    task: Task = "auto"
    metric: str | None = None
    time_budget_s: int = Field(default=60, ge=5, le=24 * 3600)
    models: list[str] | None = Field(default=None, description="Allow-list of model families.")
    validation: Validation = "auto"
    max_memory_mb: int | None = Field(default=None, ge=256)
    class_weight: Literal["balanced"] | None = None
    positive_class: str | None = None
    exclude_columns: list[str] = Field(default_factory=list)
    keep_columns: list[str] = Field(
        default_factory=list,
        description="Columns to use as features even if the profile would drop them "
        "(identifiers, constants, leakage).",
    )
    group_column: str | None = None
    time_column: str | None = None
    horizon: int | None = Field(default=None, ge=1, le=10_000)
    instructions: str | None = Field(default=None, max_length=4000)
    seed: int = 0
    # Where it runs (tools/runtimes): this machine, or the same engine on Modal or Kaggle.
    runtime: RuntimeChoice = "local"
    gpu: str | None = Field(default=None, max_length=32, description="A GPU type (remote only).")
    max_cost_usd: float | None = Field(
        default=None, ge=0, description="Refuse a remote run estimated above this (USD)."
    )
    parallel: int = Field(default=1, ge=1, le=1000, description="Containers used at once.")
    backbone: str | None = Field(
        default=None, max_length=200, description="Deep-learning tasks: the pretrained checkpoint."
    )
    engine: Literal["automl", "deep"] = Field(
        default="automl",
        description="Set by the server: 'deep' runs a rendered tools/deep template (a GPU "
        "runtime), 'automl' the tabular engine.",
    )
    # After the model (tools/jobs/after_train.py, rounds.py).
    dataset_ref: str | None = Field(
        default=None, description="The reference the caller gave, before it was resolved."
    )
    iterate: int = Field(
        default=0, ge=0, le=5, description="Follow-up rounds that act on the error analysis."
    )
    deploy_to: str | None = Field(
        default=None, max_length=200, description="A Hub model repository to deploy to."
    )
    deploy_space: bool = False
    deploy_private: bool = True
    deploy_token: str = Field(default="secret://HF_TOKEN", max_length=80)

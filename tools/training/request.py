"""What a caller asks of training: the validated request every layer shares."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Task = Literal[
    "auto", "binary", "multiclass", "regression", "forecast", "text_classification", "clustering"
]
Validation = Literal[
    "auto", "holdout", "kfold", "stratified_kfold", "group_kfold", "time_series", "repeated_kfold"
]


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

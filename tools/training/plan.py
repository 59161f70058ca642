"""The training plan: what the engine will do, decided before it starts, with every reason.

Only types live here (the planner builds them, the engine reads them), so the engine and the
planner both import this module and never each other.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

ColumnKind = Literal["numeric", "categorical", "high_cardinality", "datetime", "text"]
ConcreteTask = Literal[
    "binary", "multiclass", "regression", "forecast", "text_classification", "clustering"
]


class Decision(BaseModel):
    stage: str
    decision: str
    reason: str


class ColumnPlan(BaseModel):
    name: str
    kind: ColumnKind
    n_unique: int
    missing_fraction: float
    time_axis: bool = Field(
        default=False,
        description="The date rows are ordered by: used only through its calendar (and, by "
        "models that extrapolate, elapsed time), never as a raw timestamp.",
    )


class DroppedColumn(BaseModel):
    name: str
    reason: str


class ValidationPlan(BaseModel):
    kind: Literal[
        "stratified_kfold", "kfold", "group_kfold", "time_series", "holdout", "repeated_kfold"
    ]
    n_splits: int
    n_repeats: int = 1
    test_fraction: float = Field(description="Share of rows held out until the end.")
    group_column: str | None = None
    time_column: str | None = None


class FamilyPlan(BaseModel):
    name: str
    search_space: dict[str, str]


class TimeAllocation(BaseModel):
    total_s: float
    baseline_s: float
    search_s: float
    ensemble_s: float
    refit_s: float


class TrainingPlan(BaseModel):
    task: ConcreteTask
    target: str | None
    metric: str
    greater_is_better: bool
    positive_class: str | None = None
    classes: list[str] = Field(default_factory=list)
    n_rows: int
    columns: list[ColumnPlan]
    dropped: list[DroppedColumn] = Field(default_factory=list)
    validation: ValidationPlan
    families: list[FamilyPlan]
    time: TimeAllocation
    class_weight: Literal["balanced"] | None = None
    time_column: str | None = None
    horizon: int | None = None
    max_search_rows: int | None = None
    calendar: list[str] = Field(
        default_factory=list,
        description="The calendar parts of the time axis used as features (hour, weekday...).",
    )
    rare_classes: list[str] = Field(
        default_factory=list,
        description="Classes too small to validate on: in every training fold, never held out.",
    )
    target_transform: bool = Field(
        default=False,
        description="A heavy-tailed regression target: candidates that learn a Yeo-Johnson "
        "(log/Box-Cox family) transform of it are tried too.",
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="Findings to read before quoting the scores (leakage kept, drift, rare "
        "classes...), most important first.",
    )
    seed: int = 0
    parallel: int = Field(
        default=1, ge=1, description="Search trials evaluated at once (train_model's parallel)."
    )
    instructions: str | None = None
    decisions: list[Decision] = Field(default_factory=list)

    def decide(self, stage: str, decision: str, reason: str) -> None:
        self.decisions.append(Decision(stage=stage, decision=decision, reason=reason))

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def time_axis(self) -> str | None:
        """The column rows are ordered by for validation, if any (not for forecasts)."""
        return next((c.name for c in self.columns if c.time_axis), None)

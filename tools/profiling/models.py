"""The profile of a dataset: what a person reads and what the training planner acts on."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mltrainer.tools.profiling.formats import TableFormat

ColumnKind = Literal[
    "numeric", "categorical", "boolean", "datetime", "text", "identifier", "constant"
]
TaskKind = Literal["binary", "multiclass", "regression", "forecast", "text_classification"]
Severity = Literal["low", "medium", "high"]
WarningKind = Literal[
    "leakage",
    "identifier",
    "duplicate_rows",
    "high_cardinality",
    "constant",
    "heavy_missing",
    "ragged_rows",
    "class_imbalance",
    "target_missing",
    "small_dataset",
    "time_drift",
    "random_split",
    "skewed_target",
    "rare_classes",
]


class ValueCount(BaseModel):
    value: str
    count: int
    ratio: float = Field(description="Share of the non-missing values.")


class NumericStats(BaseModel):
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    p25: float | None = None
    median: float | None = None
    p75: float | None = None
    max: float | None = None


class ColumnProfile(BaseModel):
    name: str
    kind: ColumnKind
    dtype: str = Field(description="The pandas dtype it was read as.")
    missing: int = Field(description="Missing values (exact, also for streamed files).")
    missing_ratio: float
    cardinality: int = Field(description="Distinct non-missing values (in the sample).")
    unique_ratio: float = Field(description="cardinality / non-missing values (in the sample).")
    stats: NumericStats | None = None
    mean_length: float | None = Field(default=None, description="Text and categorical columns.")
    top_values: list[ValueCount] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)


class ProfileWarning(BaseModel):
    """A finding the planner acts on: identifier, constant and high-severity leakage columns are
    dropped from the features; a medium-severity leak is kept and warned about."""

    kind: WarningKind
    column: str | None = None
    message: str
    severity: Severity
    evidence: float | None = Field(
        default=None,
        description="The number behind a graded finding, e.g. the cross-validated score of a "
        "one-column model for leakage (high: >= 0.99, medium: >= 0.95).",
    )
    measure: str | None = Field(
        default=None, description="What ``evidence`` measures: roc_auc, balanced_accuracy, r2..."
    )


class TimeAxis(BaseModel):
    """A date column's frequency and gaps."""

    column: str
    start: str
    end: str
    distinct: int
    frequency: str | None = Field(
        description="Pandas offset alias (D, W-SUN, MS, h...) if regular."
    )
    step: str = Field(description="The typical step between consecutive distinct dates.")
    regular: bool
    gaps: int = Field(description="Missing periods between start and end at that step.")
    largest_gap: str | None = None


class TimeDrift(BaseModel):
    """Whether the target (or the features) change along a date column, beyond its calendar.

    The evidence compares what the timestamp alone explains of the target under a random split
    with what its calendar (month, weekday, ...) explains: a timestamp that explains more marks
    trends or regimes that a model would learn from the date and could not carry into the future.
    """

    column: str
    drifts: bool
    measure: str = Field(description="roc_auc, balanced_accuracy or r2 of the one-column models.")
    timestamp_score: float = Field(description="The timestamp alone, random folds.")
    calendar_score: float = Field(description="Its calendar features alone, random folds.")
    gain: float = Field(
        description="timestamp_score minus the better of calendar_score and chance: drift from "
        "0.05 on."
    )
    shifted_features: list[str] = Field(
        default_factory=list,
        description="Features whose distribution differs most between the earliest and latest "
        "fifth of the rows (standardised mean difference >= 0.5, or category shares).",
    )
    reason: str


class TargetAnalysis(BaseModel):
    column: str
    task: TaskKind
    reason: str
    missing: int
    n_classes: int | None = None
    classes: list[ValueCount] = Field(
        default_factory=list, description="Class balance (most frequent first, at most 20)."
    )
    minority_ratio: float | None = None
    stats: NumericStats | None = None
    skew: float | None = Field(default=None, description="Skewness of a numeric target.")


class TargetSuggestion(BaseModel):
    column: str
    task: TaskKind
    reason: str


class PlotRef(BaseModel):
    name: Literal["target_distribution", "missingness", "correlations"]
    path: str
    media_type: str = "image/png"
    bytes: int


class DatasetProfile(BaseModel):
    path: str
    format: TableFormat
    file_bytes: int
    n_rows: int = Field(description="Exact number of data rows (bad rows excluded).")
    n_columns: int
    sampled: bool = Field(description="Statistics come from a uniform sample of sample_rows.")
    sample_rows: int
    bad_rows: int = Field(default=0, description="Rows skipped for a wrong number of fields.")
    duplicate_rows: int = Field(description="Duplicated rows (in the sample when sampled).")
    columns: list[ColumnProfile]
    columns_omitted: int = Field(default=0, description="Columns left out to keep this short.")
    target: TargetAnalysis | None = None
    suggested_targets: list[TargetSuggestion] = Field(default_factory=list)
    time_axis: TimeAxis | None = None
    drift: TimeDrift | None = Field(
        default=None, description="Whether the target drifts along the time axis (with a target)."
    )
    warnings: list[ProfileWarning] = Field(default_factory=list)
    plots: list[PlotRef] = Field(default_factory=list)
    profile_id: str | None = Field(
        default=None, description="Read the full stored profile at mltrainer://profiles/{id}."
    )
    artifact_id: str | None = None
    elapsed_s: float = 0.0

    def columns_to_drop(self) -> list[str]:
        """Columns the planner does not use as features: leaky (high), identifiers, constants."""
        return sorted({w.column for w in self.warnings if w.column and drops_column(w)})


def drops_column(warning: ProfileWarning) -> bool:
    """Whether a finding removes its column from the features (unless the caller keeps it)."""
    if warning.kind == "leakage":
        return warning.severity == "high"
    return warning.kind in ("identifier", "constant")

"""The typed result of an error analysis, and the suggestions it makes.

Everything a caller (the assistant, or the planner iterating on its own) reads is here: where the
model fails (slices, classes, rows, horizon steps), how sure it is about it (sizes, p-values
corrected for the number of slices tested) and what to change next, each suggestion pointing at
its evidence by a path into this same object (``ref``, e.g. ``slices[0]``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

Measure = Literal["error_rate", "mean_abs_error"]
Source = Literal["holdout", "dataset"]


class Slice(BaseModel):
    """A subset of the rows, defined by one column (or a missing-value pattern)."""

    description: str = Field(description="e.g. \"colour = 'red'\", '0.5 ≤ x1 < 1.2'.")
    kind: Literal["category", "range", "missing", "missing_pattern"]
    columns: list[str]
    value: str | None = Field(default=None, description="The category value (kind 'category').")
    low: float | str | None = Field(default=None, description="Range start (inclusive).")
    high: float | str | None = Field(default=None, description="Range end.")
    rows: int
    share: float = Field(description="Share of the analysed rows in the slice.")
    measure: Measure
    error: float = Field(description="Error rate (classification) or mean |error| in the slice.")
    error_outside: float = Field(description="The same measure over the other rows.")
    lift: float = Field(description="error / the overall error: 2.0 means twice as bad.")
    bias: float | None = Field(
        default=None, description="Regression: mean (actual - predicted); > 0 under-predicts."
    )
    p_value: float
    p_adjusted: float = Field(description="Benjamini-Hochberg over every slice tested.")
    significant: bool = Field(description="p_adjusted below alpha and worse than the rest.")


class RowError(BaseModel):
    """One analysed row the model got (badly) wrong."""

    row: int | None = Field(
        description="0-based position of the row in its file (header not counted); None when "
        "unknown."
    )
    actual: str | float | None = Field(description="None when the target is marked sensitive.")
    predicted: str | float | None
    confidence: float | None = Field(
        default=None, description="Classification: the probability given to the predicted class."
    )
    error: float | None = Field(default=None, description="Regression: actual - predicted.")
    values: dict[str, str] = Field(
        default_factory=dict,
        description="The row's feature values (shortened), never those of sensitive columns.",
    )


class ClassStat(BaseModel):
    label: str
    precision: float
    recall: float
    f1: float
    support: int


class ConfusionPair(BaseModel):
    actual: str
    predicted: str
    count: int
    share_of_actual: float = Field(description="Share of the actual class's rows.")
    share_of_errors: float = Field(description="Share of all misclassified rows.")


class CalibrationBin(BaseModel):
    low: float
    high: float
    rows: int
    mean_predicted: float
    observed: float


class Calibration(BaseModel):
    kind: Literal["positive_class", "top_label"] = Field(
        description="Binary: probability of the positive class vs how often it is the answer; "
        "multiclass: confidence in the predicted class vs how often it is right."
    )
    positive_class: str | None = None
    bins: list[CalibrationBin]
    ece: float = Field(description="Expected calibration error (row-weighted |gap|).")
    verdict: Literal["calibrated", "over_confident", "under_confident"]


class ClassificationDetail(BaseModel):
    accuracy: float
    per_class: list[ClassStat]
    confusion_pairs: list[ConfusionPair] = Field(description="The costliest mistakes first.")
    calibration: Calibration | None = None
    confident_errors: list[RowError] = Field(description="Wrong, and most sure of it.")


class PredictionBin(BaseModel):
    low: float
    high: float
    rows: int
    mae: float


class Heteroscedasticity(BaseModel):
    spearman_rho: float = Field(description="Rank correlation of |error| with the prediction.")
    p_value: float
    detected: bool
    by_prediction: list[PredictionBin]


class ExtremeBias(BaseModel):
    side: Literal["low", "high"]
    threshold: float = Field(description="Target quantile bounding the extreme rows.")
    rows: int
    mean_error: float = Field(description="Mean (actual - predicted) over these rows.")
    p_value: float
    verdict: Literal["under_predicted", "over_predicted", "unbiased"]


class RegressionDetail(BaseModel):
    mae: float
    rmse: float
    bias: float = Field(description="Mean (actual - predicted).")
    largest_errors: list[RowError]
    heteroscedasticity: Heteroscedasticity | None = None
    extremes: list[ExtremeBias]


class HorizonStat(BaseModel):
    step: int = Field(description="Steps after the last training date (0: inside the history).")
    rows: int
    mae: float
    rmse: float
    bias: float
    scaled_mae: float | None = Field(
        default=None,
        description="Mean of |error| / its series' mean |actual|: series of "
        "every level weigh alike.",
    )


class SeriesStat(BaseModel):
    series: str
    rows: int
    mae: float
    scaled_mae: float | None = Field(description="MAE / mean |actual| of the series.")
    bias: float


class ForecastDetail(BaseModel):
    mae: float
    rmse: float
    series_column: str | None
    by_horizon: list[HorizonStat]
    by_series: list[SeriesStat] = Field(description="Worst (by scaled MAE) first.")
    growth: float | None = Field(
        default=None,
        description="Scaled MAE at the last step / at the first (> 1: the error "
        "grows with the horizon).",
    )


class Evidence(BaseModel):
    summary: str
    ref: str = Field(description="Where in this analysis, e.g. 'slices[0]'.")


class _Suggestion(BaseModel):
    evidence: Evidence
    actionable: bool = Field(
        description="True when a training request can act on it without a person."
    )


class GroupSplit(_Suggestion):
    """Validate with whole groups held out: rows of one group are alike."""

    action: Literal["group_split"] = "group_split"
    column: str
    actionable: bool = True


class TimeSplit(_Suggestion):
    """Validate on later rows than those trained on: errors drift with time."""

    action: Literal["time_split"] = "time_split"
    column: str
    actionable: bool = True


class MissingIndicator(_Suggestion):
    """Tell every model explicitly that a value is missing: its absence predicts errors."""

    action: Literal["missing_indicator"] = "missing_indicator"
    column: str
    actionable: bool = False  # the training request has no field for it yet


class Reweight(_Suggestion):
    """Weight classes so the rare ones count: their recall lags."""

    action: Literal["reweight"] = "reweight"
    class_weight: Literal["balanced"] = "balanced"
    classes: list[str] = Field(description="The classes whose recall lags.")
    actionable: bool = True


class OtherFamilies(_Suggestion):
    """Try model families not tried yet: the errors are systematic."""

    action: Literal["other_families"] = "other_families"
    models: list[str] = Field(description="The families to allow next (tried and untried).")
    actionable: bool = True


class MoreData(_Suggestion):
    """Collect more labelled rows like these: too few to learn them well."""

    action: Literal["more_data"] = "more_data"
    slice: str
    rows: int
    actionable: bool = False


Suggestion = Annotated[
    GroupSplit | TimeSplit | MissingIndicator | Reweight | OtherFamilies | MoreData,
    Field(discriminator="action"),
]


class PlotRef(BaseModel):
    name: str
    title: str
    path: str


class ModelAnalysis(BaseModel):
    """Where a model fails and why, on its held-out rows or on a labelled dataset."""

    model_id: str
    task: str
    target: str
    source: Source = Field(
        description="'holdout': the rows the job held out (never trained on); 'dataset': the "
        "labelled dataset given."
    )
    rows: int = Field(description="Rows analysed.")
    measure: Measure
    overall: float = Field(description="Error rate, or mean |error|, over every row analysed.")
    slices: list[Slice] = Field(
        description="Significant slices first (worst lift first), then the closest others."
    )
    slices_tested: int
    min_slice_rows: int
    alpha: float
    classification: ClassificationDetail | None = None
    regression: RegressionDetail | None = None
    forecast: ForecastDetail | None = None
    suggestions: list[Suggestion] = Field(default_factory=list)
    plots: list[PlotRef] = Field(default_factory=list)
    sensitive_columns: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

"""What the engine returns: the final model, its scores, the leaderboard and the holdout data.

Only types live here; every engine flow (tabular, forecast, clustering) builds an
:class:`AutoMLResult`, and the report, the card and the job read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, GetCoreSchemaHandler, model_validator
from pydantic_core import core_schema

from mltrainer.tools.training.plan import ConcreteTask, Decision, DroppedColumn, TrainingPlan
from mltrainer.tools.training.versions import library_versions

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class ImportanceEntry(BaseModel):
    """A feature's permutation importance: how much the metric drops when its values are
    shuffled, on held-out rows, for the model that never saw them."""

    name: str
    mean: float = Field(description="Mean drop of the metric (its greater-is-better form).")
    std: float = Field(description="Spread (standard deviation) over the repeats.")
    repeats: int


class LeaderboardEntry(BaseModel):
    name: str
    family: str
    params: dict[str, Any]
    cv_mean: float
    cv_std: float
    fit_time_s: float
    weight: float = Field(default=0.0, description="Its weight in the final model (0: unused).")


@dataclass(frozen=True)
class SeriesPlot:
    """One forecast series as plotted: its history, the forecast of its held-out end, and the
    actual values there."""

    label: str
    history_times: np.ndarray
    history: np.ndarray
    forecast_times: np.ndarray
    forecast: np.ndarray
    actual: np.ndarray | None = None


@dataclass(frozen=True)
class HoldoutFrame:
    """The held-out rows and what the final model made of them: what the plots draw.

    ``y_test`` and ``y_pred`` hold class labels (classification), values (regression, forecast)
    or, for clustering, no truth and the cluster of each row. A forecast holds up to three
    ``series`` (the longest), and the series column when it forecasts several.
    """

    x_test: pd.DataFrame | None = None
    y_test: np.ndarray | None = None
    y_pred: np.ndarray | None = None
    proba: np.ndarray | None = None
    series: list[SeriesPlot] = field(default_factory=list)
    n_series: int = 0
    series_column: str | None = None

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # Arrays and frames are not validated: a model field of this type takes an instance.
        return core_schema.is_instance_schema(cls)


class AutoMLResult(BaseModel):
    estimator: Any = Field(exclude=True)
    task: ConcreteTask
    metric: str
    greater_is_better: bool
    target: str | None
    features: list[str]
    classes: list[str] = Field(default_factory=list)
    positive_class: str | None = None
    plan: TrainingPlan
    decisions: list[Decision]
    leaderboard: list[LeaderboardEntry]
    cv_mean: float | None
    cv_std: float | None
    holdout: dict[str, float]
    score: float | None = Field(
        default=None,
        description="The held-out test score of the chosen pipeline fitted on the training rows "
        "only: rows no fit, selection, calibration or threshold saw.",
    )
    refit: bool = Field(
        default=False,
        description="The model predict uses was refitted on every labelled row (held-out rows "
        "included) after it was scored; else it is the model that was scored.",
    )
    selection: str = Field(default="", description="How the model was chosen, and on which score.")
    calibration: str | None = Field(default=None, description="How probabilities are calibrated.")
    threshold: float | None = Field(
        default=None, description="Decision threshold on the positive class's probability."
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="Findings to read before quoting the score (leakage, drift, one dominant "
        "feature, rare classes...), most important first.",
    )
    feature_importance: list[tuple[str, float]]
    importance: list[ImportanceEntry] = Field(
        default_factory=list, description="feature_importance with the spread of its repeats."
    )
    holdout_frame: HoldoutFrame | None = Field(default=None, exclude=True)
    dropped_columns: list[DroppedColumn]
    seed: int
    library_versions: dict[str, str] = Field(default_factory=library_versions)
    elapsed_s: float = 0.0
    model_name: str = ""
    search_stopped: str = Field(
        default="",
        description="Why the search ended: 'converged' (reproducible with the same seed), "
        "'time', 'no family left', 'cancelled' or 'replayed' (a resumed job).",
    )

    @model_validator(mode="after")
    def _score_is_the_holdout(self) -> AutoMLResult:
        """``score`` is the held-out score of the metric wherever a flow did not set it."""
        if self.score is None:
            self.score = self.holdout.get(self.metric)
        return self

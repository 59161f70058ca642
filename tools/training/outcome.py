"""What a train job reports: its result, filled in as it goes, typed end to end.

The job runner (tools/jobs/train.py) builds it, the store keeps it as the job's ``result`` (its
JSON), and callers read it back with ``TrainOutcome.model_validate(job.result)``. Only light
types live here, so that the server can import it without the engine.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mltrainer.tools.training.plan import Decision, DroppedColumn
from mltrainer.tools.training.results import ImportanceEntry, LeaderboardEntry


class Tracking(BaseModel):
    """Where MLflow logged the job (tools/tracking), or why it did not."""

    status: Literal["disabled", "logged", "failed"]
    tracking_uri: str | None = None
    experiment: str | None = None
    run_id: str | None = None
    model_uri: str | None = Field(default=None, description="For mlflow.pyfunc.load_model.")
    warnings: list[str] = Field(default_factory=list)


class Deployment(BaseModel):
    """Where the deploy stage put the model on the Hub (tools/deploy)."""

    repo_id: str
    repo_url: str | None
    commit_sha: str | None
    space_url: str | None = None
    notes: list[str] = Field(default_factory=list)


class Round(BaseModel):
    """One follow-up round of iterate=N: what the error analysis changed and what came of it."""

    round: int
    changes: list[str] = Field(description="Each change to the request and its evidence.")
    skipped: list[str] = Field(default_factory=list, description="Suggestions not acted on.")
    model_id: str | None = None
    score: float | None = Field(default=None, description="Its held-out score.")
    kept: bool = False
    why: str


class TrainOutcome(BaseModel):
    """The result of a train job; ``model_id`` and ``score`` are set once a model is saved."""

    kind: Literal["train"] = "train"
    model_id: str | None = None
    task: str | None = None
    metric: str | None = None
    score: float | None = Field(
        default=None,
        description="Once the job has finished: the held-out test score of the chosen pipeline "
        "fitted on the training rows only (rows no fit, selection, calibration or threshold "
        "saw). While it runs: the validation score of the best model so far (score_source).",
    )
    score_source: Literal["validation", "holdout"] | None = None
    refit: bool | None = Field(
        default=None,
        description="True: the model predict uses was refitted on every row after it was scored "
        "(it learnt the held-out rows too); False: it is the model that was scored.",
    )
    selection: str | None = Field(
        default=None, description="How the model was chosen, and which score was used for it."
    )
    calibration: str | None = None
    threshold: float | None = Field(
        default=None,
        description="Decision threshold on the positive class's probability, chosen out of fold "
        "(predict takes another with threshold=).",
    )
    headline: list[str] = Field(
        default_factory=list,
        description="Read these before quoting the score: leakage, time drift, a feature that "
        "carries most of the importance, rare classes, a heavy-tailed target.",
    )
    model_name: str | None = None
    rows: int | None = None
    features: list[str] = Field(default_factory=list)
    cv_mean: float | None = None
    cv_std: float | None = None
    holdout: dict[str, float] = Field(default_factory=dict)
    leaderboard: list[LeaderboardEntry] = Field(default_factory=list)
    feature_importance: list[tuple[str, float]] = Field(default_factory=list)
    importance: list[ImportanceEntry] = Field(
        default_factory=list,
        description="Permutation importance on held-out rows (the model that never saw them), "
        "with the spread of its repeats.",
    )
    dropped_columns: list[DroppedColumn] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    artifacts: dict[str, str] = Field(
        default_factory=dict, description="File name → path of what the final model's folder holds."
    )
    data_sha256: str | None = None
    rounds: list[Round] = Field(default_factory=list, description="iterate=N: every round.")
    tracking: Tracking | None = None
    deployment: Deployment | None = None
    search_stopped: str | None = Field(
        default=None,
        description="Why the search ended; 'converged' means the same data, settings and seed "
        "give the same model again, 'time' that the budget decided how many candidates ran.",
    )

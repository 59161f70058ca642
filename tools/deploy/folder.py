"""A saved model's folder, read once into typed parts.

Only the files a finished training leaves are read (meta.json, metrics.json, manifest.json,
plan.json, leaderboard.json); nothing here imports the training code, so training can use the
card and the bundle without an import cycle. Unknown fields are ignored: the folder's files
grow over time and an older folder must still deploy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mltrainer.state.errors import InvalidInput, JobStateError, NotFound

MODEL_FILE = "model.skops"
META_FILE = "meta.json"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.json"
PLAN_FILE = "plan.json"
LEADERBOARD_FILE = "leaderboard.json"
PREDICT_FILE = "predict.py"
# Written when training reports; a model published earlier (a job's baseline) lacks them.
REPORT_FILES = (METRICS_FILE, MANIFEST_FILE, PREDICT_FILE)

M = TypeVar("M", bound=BaseModel)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SavedMeta(_Lenient):
    model_id: str
    job_id: str | None = None
    task: str
    target: str | None = None
    features: list[str]
    classes: list[str] | None = None
    positive_class: str | None = None
    metric: str
    name: str = "model"
    created_at: str | None = None
    library_versions: dict[str, str] = Field(default_factory=dict)
    trusted_types: list[str] = Field(default_factory=list)


class SavedMetrics(_Lenient):
    task: str
    metric: str
    cv_mean: float | None = None
    cv_std: float | None = None
    holdout: dict[str, float] = Field(default_factory=dict)


class DataInfo(_Lenient):
    path: str | None = None
    ref: str | None = Field(default=None, description="The reference the data was fetched by.")
    sha256: str | None = None
    rows: int | None = None


class SavedManifest(_Lenient):
    job_id: str | None = None
    model_id: str | None = None
    request: dict[str, Any] = Field(default_factory=dict)
    data: DataInfo = Field(default_factory=DataInfo)
    seed: int | None = None
    search_stopped: str | None = None
    library_versions: dict[str, str] = Field(default_factory=dict)
    license: str | None = None


class PlanColumn(_Lenient):
    name: str
    kind: str
    n_unique: int | None = None
    missing_fraction: float | None = None


class PlanDecision(_Lenient):
    stage: str
    decision: str
    reason: str


class DroppedColumn(_Lenient):
    name: str
    reason: str


class SavedPlan(_Lenient):
    greater_is_better: bool = True
    n_rows: int | None = None
    columns: list[PlanColumn] = Field(default_factory=list)
    dropped: list[DroppedColumn] = Field(default_factory=list)
    decisions: list[PlanDecision] = Field(default_factory=list)


class LeaderboardEntry(_Lenient):
    name: str
    family: str | None = None
    cv_mean: float | None = None
    cv_std: float | None = None
    fit_time_s: float | None = None
    weight: float | None = None


class ModelFolder(BaseModel):
    """Everything deployment reads from one model folder."""

    path: Path
    meta: SavedMeta
    metrics: SavedMetrics
    manifest: SavedManifest
    plan: SavedPlan
    leaderboard: list[LeaderboardEntry]

    @property
    def library_versions(self) -> dict[str, str]:
        """The versions the model was trained with (the manifest's list is the longer one)."""
        return {**self.meta.library_versions, **self.manifest.library_versions}

    def plots(self) -> list[Path]:
        return sorted(self.path.glob("*.png"))


def read_folder(path: Path) -> ModelFolder:
    """Read a finished model's folder; a missing or malformed file is a clear error."""
    if not (path / MODEL_FILE).is_file() or not (path / META_FILE).is_file():
        raise NotFound(
            f"The model files in {path} are missing.",
            next_step="Train the model again with train_model, then deploy it.",
        )
    missing = [name for name in REPORT_FILES if not (path / name).is_file()]
    if missing:
        raise JobStateError(
            f"The model in {path.name} has no evaluation report yet ({', '.join(missing)} "
            "missing): it is an intermediate model of a job that is still running or stopped "
            "early.",
            next_step="Wait until the job has succeeded (job_status), then deploy its model_id.",
        )
    return ModelFolder(
        path=path,
        meta=_read(path / META_FILE, SavedMeta),
        metrics=_read(path / METRICS_FILE, SavedMetrics),
        manifest=_read(path / MANIFEST_FILE, SavedManifest),
        plan=_read(path / PLAN_FILE, SavedPlan, default={}),
        leaderboard=_read_list(path / LEADERBOARD_FILE, LeaderboardEntry),
    )


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"{path.name} of the model in {path.parent.name} cannot be read ({exc}).",
            next_step="Train the model again; its folder is damaged.",
        ) from None


def _read(path: Path, model: type[M], default: Any = None) -> M:
    if default is not None and not path.is_file():
        return model.model_validate(default)
    try:
        return model.model_validate(_load_json(path))
    except ValidationError as exc:
        raise InvalidInput(
            f"{path.name} of the model in {path.parent.name} is not what training writes "
            f"({exc.error_count()} problem(s), e.g. {exc.errors()[0]['msg']}).",
            next_step="Train the model again; its folder is damaged.",
        ) from None


def _read_list(path: Path, model: type[M]) -> list[M]:
    if not path.is_file():
        return []
    data = _load_json(path)
    if not isinstance(data, list):
        return []
    return [model.model_validate(item) for item in data if isinstance(item, dict)]

"""Typed rows of the store. Every row read from SQLite is validated into one of these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
# 'train': train_model, run by a worker process; 'code': a long run_code, run by the server;
# 'script': submit_training (a script the assistant wrote), run by a worker process.
JobKind = Literal["train", "code", "script"]
# How far a remote submission got: 'submitting' is recorded before the provider is asked, so
# that a worker that died then asks the provider before it submits (and pays) again.
SubmissionState = Literal["submitting", "submitted"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
StageStatus = Literal["running", "succeeded", "failed", "skipped"]
EventLevel = Literal["debug", "info", "warning", "error", "progress"]
EVENT_LEVELS: frozenset[str] = frozenset(EventLevel.__args__)  # type: ignore[attr-defined]


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobRecord(BaseModel):
    id: str
    kind: str = Field(description="What the job does, e.g. 'train'.")
    status: JobStatus = "queued"
    request: dict[str, Any] = Field(default_factory=dict, description="The validated request.")
    result: dict[str, Any] | None = None
    error: str | None = None
    progress: float = 0.0
    message: str = ""
    attempt: int = 0
    worker_pid: int | None = None
    worker_started: float | None = Field(
        default=None, description="The worker's process start time, to tell a reused pid."
    )
    heartbeat_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_requested: bool = False
    # Where the job runs ('local', 'modal', 'kaggle') and, for a remote one, how to find it.
    runtime: str = "local"
    remote_id: str | None = None
    remote_url: str | None = None
    remote_state: SubmissionState | None = None
    resources: dict[str, Any] | None = Field(default=None, description="What was requested.")
    estimated_cost_usd: float | None = None
    cost_usd: float | None = Field(default=None, description="As the provider reported it.")
    preflight: dict[str, Any] | None = Field(
        default=None, description="The pre-flight guard's report (checks, estimate, cap)."
    )


class StageRecord(BaseModel):
    job_id: str
    name: str
    seq: int
    status: StageStatus
    attempt: int = 1
    result: dict[str, Any] | None = None
    error: str | None = None
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class EventRecord(BaseModel):
    id: int | None = None
    job_id: str
    at: datetime = Field(default_factory=utcnow)
    level: EventLevel = "info"
    stage: str | None = None
    message: str
    progress: float | None = None


class ArtifactRecord(BaseModel):
    id: str
    job_id: str | None = None
    model_id: str | None = None
    kind: str = Field(description="e.g. 'model', 'metrics', 'plot', 'card', 'predictions'.")
    path: str
    media_type: str = "application/octet-stream"
    bytes: int = 0
    sha256: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class ModelRecord(BaseModel):
    id: str
    job_id: str
    task: str
    target: str | None
    metric: str
    score: float | None
    path: str = Field(description="Directory holding the model and its artifacts.")
    features: list[str] = Field(default_factory=list)
    classes: list[str] | None = None
    summary: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)
    file_sha256: str | None = Field(
        default=None,
        description="sha256 of model.skops when it was saved; a file that no longer has it is "
        "not loaded. None for models saved before it was recorded.",
    )


class DatasetRecord(BaseModel):
    id: str
    ref: str = Field(description="The reference it was fetched by, e.g. 'kaggle:owner/name'.")
    source: Literal["kaggle", "kaggle-competition", "hf", "url", "local", "sql"]
    local_dir: str
    files: list[dict[str, Any]] = Field(
        default_factory=list, description="[{path, bytes, sha256}] relative to local_dir."
    )
    checksum: str | None = Field(default=None, description="Hash over the files' hashes.")
    meta: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)


# -- sandbox runs -------------------------------------------------------------------------
RunState = Literal["running", "ok", "error", "timeout", "killed", "lost"]
RUN_TAIL_CHARS = 4000  # how much of a run's stdout and stderr its record keeps (the end)


class RunRecord(BaseModel):
    """One run_code call. Runs are not jobs: they have their own table (``sandbox_runs``)."""

    id: str
    session: str | None = None
    job_id: str | None = Field(
        default=None, description="The 'code' job it ran as, when timeout_s was too long."
    )
    backend: str
    status: RunState = "running"
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    duration_s: float | None = None
    exit_code: int | None = None
    reason: str | None = None
    stdout_tail: str = Field(default="", description="The end of stdout, masked.")
    stderr_tail: str = Field(default="", description="The end of stderr, masked.")
    workspace: str | None = None
    # The server process running it: a run left 'running' by a server that died is told
    # from one that another server (sharing this database) runs now.
    owner_pid: int | None = None
    owner_started: float | None = None

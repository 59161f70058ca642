"""What callers see of a job: one typed view, the same for train_model and job_status."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from mltrainer.state.models import TERMINAL, JobRecord, JobStatus, StageRecord, utcnow


class JobView(BaseModel):
    job_id: str
    kind: str
    status: JobStatus
    model_id: str | None = Field(default=None, description="Set once a model has been saved.")
    task: str | None = None
    metric: str | None = None
    score: float | None = Field(default=None, description="Validation score of model_id.")
    progress: float = Field(description="Fraction done, 0 to 1.")
    message: str = Field(description="The latest progress line.")
    stage: str | None = Field(default=None, description="The stage running now.")
    stages_done: list[str] = Field(default_factory=list)
    error: str | None = None
    attempt: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    elapsed_s: float | None = None
    result: dict | None = Field(default=None, description="The job's full result, when finished.")
    next_step: str = Field(description="What to do next with this job.")

    @classmethod
    def of(cls, job: JobRecord, stages: list[StageRecord]) -> JobView:
        result = job.result or {}
        running = [s.name for s in stages if s.status == "running"]
        done = [s.name for s in stages if s.status == "succeeded" and ":" not in s.name]
        end = job.finished_at or utcnow()
        return cls(
            job_id=job.id,
            kind=job.kind,
            status=job.status,
            model_id=result.get("model_id"),
            task=result.get("task"),
            metric=result.get("metric"),
            score=result.get("score"),
            progress=job.progress,
            message=job.message,
            stage=running[-1] if running and job.status == "running" else None,
            stages_done=done,
            error=job.error,
            attempt=job.attempt,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            elapsed_s=round((end - job.started_at).total_seconds(), 2) if job.started_at else None,
            result=result if job.status in TERMINAL else None,
            next_step=_next_step(job, result.get("model_id")),
        )


def _next_step(job: JobRecord, model_id: str | None) -> str:
    if job.status == "succeeded" and model_id:
        return f"Call predict(model='{model_id}', dataset=...) to use the model."
    if job.status in ("queued", "running"):
        extra = f" Model {model_id} (best so far) is already usable by predict." if model_id else ""
        return f"Still working: call job_status(job_id='{job.id}') again in a while.{extra}"
    if job.status == "cancelled":
        return f"Cancelled.{f' Its best model so far, {model_id}, is usable.' if model_id else ''}"
    return "Read the error and the log (mltrainer://jobs/{id}/log), fix the cause and start a new job.".replace(
        "{id}", job.id
    )

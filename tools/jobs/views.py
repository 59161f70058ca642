"""What callers see of a job: one typed view, the same for train_model and job_status.

A job's ``result`` is the typed outcome of its kind: a ``TrainOutcome`` for training jobs,
the sandbox's ``RunResult`` for ``code`` jobs (long ``run_code`` calls), a ``ScriptOutcome``
for ``script`` jobs (submit_training). A job that runs elsewhere also shows where (``remote``)
and what the pre-flight guard checked (``preflight``); a dry run is a job that ran only that.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from mltrainer.sandbox.models import RunResult
from mltrainer.state.models import TERMINAL, JobRecord, JobStatus, StageRecord, utcnow
from mltrainer.tools.runtimes.base import Resources
from mltrainer.tools.runtimes.models import GuardReport, RemoteRun, ScriptOutcome
from mltrainer.tools.training.outcome import TrainOutcome

JobOutcome = TrainOutcome | RunResult | ScriptOutcome
OUTCOMES: dict[str, type[TrainOutcome] | type[RunResult] | type[ScriptOutcome]] = {
    "train": TrainOutcome,
    "code": RunResult,
    "script": ScriptOutcome,
}


class JobView(BaseModel):
    job_id: str
    kind: str = Field(
        description="'train' (train_model), 'code' (a long run_code) or 'script' (submit_training)."
    )
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
    result: JobOutcome | None = Field(
        default=None,
        description="The job's full result once it has ended: a training outcome (metrics, "
        "leaderboard, decisions, artifacts) or a code run's result (stdout, stderr, status).",
    )
    next_step: str = Field(description="What to do next with this job.")
    runtime: str = Field(default="local", description="Where it runs: local, modal or kaggle.")
    remote: RemoteRun | None = Field(
        default=None, description="A run elsewhere: its id, URL, resources and costs."
    )
    preflight: GuardReport | None = Field(
        default=None,
        description="What the pre-flight guard checked before anything was sent: the spec, "
        "the cost estimate (with the date of its prices) and the cap, the dry run.",
    )
    dry_run: bool = Field(default=False, description="Only the guard ran; nothing was sent.")

    @classmethod
    def of(cls, job: JobRecord, stages: list[StageRecord]) -> JobView:
        outcome = outcome_of(job)
        train = outcome if isinstance(outcome, TrainOutcome) else None
        running = [s.name for s in stages if s.status == "running"]
        done = [s.name for s in stages if s.status == "succeeded" and ":" not in s.name]
        end = job.finished_at or utcnow()
        preflight = GuardReport.model_validate(job.preflight) if job.preflight else None
        return cls(
            job_id=job.id,
            kind=job.kind,
            status=job.status,
            model_id=train.model_id if train else None,
            task=train.task if train else None,
            metric=train.metric if train else None,
            score=train.score if train else None,
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
            result=outcome if job.status in TERMINAL else None,
            next_step=_next_step(job, train.model_id if train else None),
            runtime=job.runtime,
            remote=_remote(job),
            preflight=preflight,
            dry_run=bool(preflight and preflight.mode == "dry_run"),
        )


def outcome_of(job: JobRecord) -> JobOutcome | None:
    """The job's result as its kind's model; None before it has one (or for other kinds)."""
    model = OUTCOMES.get(job.kind)
    if model is None or job.result is None:
        return None
    return model.model_validate(job.result)


def _remote(job: JobRecord) -> RemoteRun | None:
    if job.runtime == "local":
        return None
    report = GuardReport.model_validate(job.preflight) if job.preflight else None
    return RemoteRun(
        remote_id=job.remote_id,
        url=job.remote_url,
        state=job.remote_state,
        resources=Resources.model_validate(job.resources) if job.resources else None,
        estimated_cost_usd=job.estimated_cost_usd,
        cost_usd=job.cost_usd,
        prices_as_of=report.estimate.prices_as_of if report else None,
    )


def _next_step(job: JobRecord, model_id: str | None) -> str:
    if job.preflight and job.preflight.get("mode") == "dry_run":
        return (
            "This was a dry run: nothing was sent or paid for. Read preflight (the checks, the "
            "estimate and the cap) and call again with dry_run=false to run it."
        )
    if job.status in ("queued", "running"):
        extra = f" Model {model_id} (best so far) is already usable by predict." if model_id else ""
        return (
            f"Still working: call job_status(job_id='{job.id}', wait_s=45) again, or "
            f"cancel_job to stop it.{extra}"
        )
    if job.kind == "script":
        return {
            "succeeded": "The outputs are in result.outputs (also the job's artifacts).",
            "cancelled": f"Cancelled. {job.error or ''}".strip(),
        }.get(
            job.status,
            f"Read the error and the log (mltrainer://jobs/{job.id}/log), fix the script (prove "
            "the fix with dry_run=True) and call submit_training again.",
        )
    if job.kind == "code":
        return {
            "succeeded": "Read stdout, stderr and status in result.",
            "cancelled": "Cancelled: its sandbox was stopped. Run the code again if needed.",
        }.get(job.status, "Read the error, fix the code and call run_code again.")
    if job.status == "succeeded":
        if model_id:
            return f"Call predict(model='{model_id}', dataset=...) to use the model."
        return "Finished: its outcome is in result."
    if job.status == "cancelled":
        return f"Cancelled.{f' Its best model so far, {model_id}, is usable.' if model_id else ''}"
    return (
        f"Read the error and the log (mltrainer://jobs/{job.id}/log), fix the cause and start "
        "a new job."
    )

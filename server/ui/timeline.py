"""What the job dashboard needs that ``job_status`` does not carry: each stage's timing, the
events since a cursor, and, while the job runs, the leaderboard and the planner's decisions so
far (from the job's checkpoints). Served by the app-only tool ``job_timeline`` (server/apps.py),
which hosts never show to the model.

Built from the store's typed records only: messages were masked when they were written, and
the whole result is masked again at the MCP edge like every other tool result.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from mltrainer.state.models import (
    EventLevel,
    JobRecord,
    JobStatus,
    StageRecord,
    StageStatus,
    utcnow,
)
from mltrainer.state.store import Store
from mltrainer.tools.jobs.views import outcome_of
from mltrainer.tools.training.outcome import TrainOutcome
from mltrainer.tools.training.plan import Decision
from mltrainer.tools.training.results import LeaderboardEntry

EVENTS_PER_CALL = 200
CHECKPOINT = "checkpoint:"


class StageTiming(BaseModel):
    name: str
    status: StageStatus
    attempt: int
    started_at: datetime
    finished_at: datetime | None = None
    duration_s: float = Field(description="Seconds it ran (so far, while it runs).")
    error: str | None = None


class EventLine(BaseModel):
    id: int
    at: datetime
    level: EventLevel
    stage: str | None = None
    message: str
    progress: float | None = None


class JobTimeline(BaseModel):
    """A job's stages, new events and search state, for the dashboard view."""

    job_id: str
    kind: str
    status: JobStatus
    progress: float
    message: str
    stages: list[StageTiming]
    events: list[EventLine] = Field(description="Events after the cursor given, oldest first.")
    cursor: int = Field(description="Pass as after_event next time to get only newer events.")
    more_events: bool = Field(description="More events wait past this page: call again.")
    metric: str | None = None
    greater_is_better: bool | None = None
    leaderboard: list[LeaderboardEntry] = Field(
        default_factory=list, description="Candidates so far, best first."
    )
    decisions: list[Decision] = Field(default_factory=list)
    holdout: dict[str, float] = Field(default_factory=dict)
    model_id: str | None = None
    score: float | None = None


class _PlanCheckpoint(BaseModel):
    """The part of the plan checkpoint the view reads (the engine's plan has more)."""

    metric: str | None = None
    greater_is_better: bool = True
    decisions: list[Decision] = Field(default_factory=list)


def job_timeline(store: Store, job_id: str, after_event: int) -> JobTimeline:
    job = store.get_job(job_id)
    stages = store.stages(job_id)
    events = store.events(job_id, after_id=after_event, limit=EVENTS_PER_CALL)
    checkpoints = {s.name[len(CHECKPOINT) :]: s.result or {} for s in stages if s.result}
    plan = _PlanCheckpoint.model_validate(checkpoints.get("plan", {}).get("plan") or {})
    outcome = outcome_of(job)
    train = outcome if isinstance(outcome, TrainOutcome) else TrainOutcome()
    entries = train.leaderboard or [
        LeaderboardEntry.model_validate(entry)
        for entry in checkpoints.get("leaderboard", {}).get("entries", [])
    ]
    entries.sort(key=lambda e: e.cv_mean, reverse=plan.greater_is_better)
    return JobTimeline(
        job_id=job.id,
        kind=job.kind,
        status=job.status,
        progress=job.progress,
        message=job.message,
        stages=[_timing(s, job) for s in stages if not s.name.startswith(CHECKPOINT)],
        events=[EventLine.model_validate(e.model_dump()) for e in events],
        cursor=(events[-1].id or after_event) if events else after_event,
        more_events=len(events) == EVENTS_PER_CALL,
        metric=train.metric or plan.metric,
        greater_is_better=plan.greater_is_better if checkpoints.get("plan") else None,
        leaderboard=entries,
        decisions=train.decisions or plan.decisions,
        holdout=train.holdout,
        model_id=train.model_id,
        score=train.score,
    )


def _timing(stage: StageRecord, job: JobRecord) -> StageTiming:
    # A stage left 'running' by a job that has ended (a killed worker) stopped with the job.
    end = stage.finished_at or (job.finished_at if job.finished_at else utcnow())
    return StageTiming(
        name=stage.name,
        status=stage.status,
        attempt=stage.attempt,
        started_at=stage.started_at,
        finished_at=stage.finished_at,
        duration_s=round(max((end - stage.started_at).total_seconds(), 0.0), 2),
        error=stage.error,
    )

"""The sandbox's typed boundary: what a run returns and what ``sandbox_info`` reports."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from mltrainer.state.models import RunState

SYNC_LIMIT_S = 50.0  # longest timeout_s run_code waits for in one call (clients give up at 60)
BackendName = Literal["docker", "bwrap", "process"]
RunStatus = Literal["ok", "error", "timeout", "killed", "running"]


class ImageInfo(BaseModel):
    """A PNG figure the code produced; its bytes travel as MCP image content."""

    path: str = Field(description="Path of the PNG inside the workspace, relative to it.")
    bytes: int
    attached: bool = Field(description="False when the image was over the size or count cap.")


class RunResult(BaseModel):
    """The outcome of one ``run_code`` call. A failure of the code itself is data."""

    status: RunStatus = Field(
        description="'ok'; 'error' (exception or non-zero exit: see stderr); 'timeout' (killed "
        "at timeout_s); 'killed' (stopped: memory, process or CPU limit, a cancel, or the "
        "session was closed; see reason); 'running' (timeout_s was too long to wait for in "
        "one call: the code runs as a job, poll job_status(job_id) for this result)."
    )
    stdout: str
    stderr: str
    exit_code: int | None = None
    duration_s: float
    session: str | None = Field(description="The session it ran in; None for a fresh process.")
    backend: BackendName
    backend_reason: str = Field(description="Why this backend is the one in use.")
    isolated: bool = Field(
        description="False only with the explicit MLTRAINER_SANDBOX=process opt-in: the code "
        "then ran as an ordinary process with resource limits but no isolation."
    )
    files_written: list[str] = Field(
        default_factory=list, description="Files created or changed in the workspace."
    )
    images: list[ImageInfo] = Field(default_factory=list)
    stdout_truncated_bytes: int = 0
    stderr_truncated_bytes: int = 0
    reason: str | None = Field(default=None, description="Why it timed out or was killed.")
    session_lost: bool = Field(
        default=False, description="True when a timeout or kill ended the session's interpreter."
    )
    workspace: str = Field(description="The workspace directory on the server's side.")
    run_id: str | None = Field(default=None, description="This run's record (see sandbox_info).")
    job_id: str | None = Field(
        default=None, description="The job it runs as, when timeout_s was too long to wait."
    )
    next_step: str = Field(default="", description="What to do next.")


class CodeRequest(BaseModel):
    """The request of a 'code' job: a run_code call too long to wait for."""

    code: str
    session: str | None
    timeout_s: float
    files: list[str]
    network: bool


class RunSummary(BaseModel):
    """One past run, as sandbox_info lists them (runs are not jobs: list_jobs omits them)."""

    run_id: str
    session: str | None
    status: RunState
    started_at: datetime
    duration_s: float | None
    exit_code: int | None
    reason: str | None
    job_id: str | None


class SandboxInfo(BaseModel):
    backend: BackendName | None = Field(description="None when no backend can run.")
    isolated: bool
    reason: str = Field(description="Why this backend was chosen, or why none can run.")
    candidates: dict[str, str] = Field(
        default_factory=dict, description="Each backend and whether it is usable here."
    )
    layers: list[str] = Field(default_factory=list, description="The isolation layers in use.")
    limits: dict[str, str] = Field(default_factory=dict)
    network_allowed: bool
    sessions: list[SessionInfo] = Field(default_factory=list)
    recent_runs: list[RunSummary] = Field(
        default_factory=list, description="The latest run_code calls, newest first."
    )


class SessionInfo(BaseModel):
    name: str
    calls: int
    idle_s: float
    workspace: str
    busy: bool = Field(description="A call is running in it now.")
    job_id: str | None = Field(
        default=None, description="The code job running in it now, if any (see job_status)."
    )
    next_step: str


class SessionClosed(BaseModel):
    session: str
    closed: bool
    message: str


SandboxInfo.model_rebuild()

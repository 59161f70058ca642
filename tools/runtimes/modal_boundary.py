"""The boundary between the Modal runtime and Modal: the few calls it makes, typed.

``ModalRuntime`` (modal.py) speaks only through a ``ModalClient``: the real one drives the
``modal`` SDK (modal_sdk.py); tests put a fake here (tests/fakes/modal.py), since the SDK has
no offline mode. A ``ModalJob`` is a run in Modal's terms, everything the client needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field

from mltrainer.tools.runtimes.base import RemoteStatus


class ModalJob(BaseModel):
    """One run, in Modal's terms: what crosses the boundary to the client."""

    job_id: str = Field(description="The submission's name: what find() looks it up by.")
    app_name: str
    run_dir: Path
    entry: str
    input_dir: Path | None
    requirements: list[str]
    python_version: str
    gpu: str | None = Field(description="Modal's spelling: 'L4', 'H100:2'; None: CPU only.")
    cpu: float
    memory_mb: int
    timeout_s: int
    startup_timeout_s: int
    outputs: list[str]
    parallel: int = Field(
        default=1, ge=1, description="Containers of the engine's search trials at once."
    )
    secret_env: dict[str, str] = Field(
        default_factory=dict,
        repr=False,
        exclude=True,  # never in a dump of the job: only the Modal secret made for the run
        description="The run's secrets, by variable name.",
    )


class CallState(BaseModel):
    status: RemoteStatus
    message: str = ""
    cost_usd: float | None = None


class LogLine(BaseModel):
    at: float = Field(description="Seconds since the epoch, as Modal stamps the line.")
    text: str


class ModalClient(Protocol):
    """The calls the runtime makes of Modal; each raises TransientRemoteError for what is
    worth retrying and the project's typed errors for the rest."""

    def upload(self, job: ModalJob) -> None: ...

    def find(self, job_id: str) -> str | None:
        """The call id of an earlier submission of ``job_id``, if Modal has one."""
        ...

    def spawn(self, job: ModalJob) -> str:
        """Start the run; its call id."""
        ...

    def state(self, call_id: str) -> CallState: ...

    def logs(self, call_id: str, since: float | None) -> list[LogLine]:
        """Log lines stamped after ``since`` (all when None), oldest first."""
        ...

    def download(self, call_id: str, dest: Path) -> list[Path]:
        """The run's output folder (only the outputs it was asked for) into ``dest``."""
        ...

    def cancel(self, call_id: str) -> None: ...

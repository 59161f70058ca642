"""One interface for every place a training job can run: this machine, Modal, a Kaggle kernel.

A job that runs elsewhere is a folder shipped with its data (``RemoteSpec``): an entry script
with its helpers and config (the AutoML engine's remote entry point, a deep-learning template
rendered by tools/deep, or a script the assistant wrote), the data it reads, the packages it
needs and the resources it asks for. Every runtime takes the same spec and answers in the same
typed models, so the job code (tools/jobs/remote.py) is written once:

    problems = runtime.validate(spec)        # before anything is pushed or paid for
    estimate = runtime.estimate_cost(spec)
    runtime.upload(spec)                     # the run folder and data (idempotent)
    handle = runtime.find(spec.job_id) or runtime.submit(spec)   # never twice per job
    state = runtime.status(handle)           # poll ...
    chunk = runtime.logs(handle, cursor)     # ... and read the log since a cursor
    files = runtime.fetch(handle, dest)      # the output folder comes back
    runtime.cancel(handle)                   # where the provider allows it

The contract a script follows wherever it runs: it reads its data from the folder named by
``MLTRAINER_INPUT_DIR`` and writes what it wants back into ``MLTRAINER_OUTPUT_DIR`` (both
also passed as ``--data`` / ``--output``); ``MLTRAINER_DRY_RUN=1`` asks for the seconds-long
local proof run. Secrets named in ``RemoteSpec.secrets`` reach the run only the provider's way
(never in the script, the metadata or the logs).

Errors: a runtime raises the project's typed errors (mltrainer.state.errors): ``InvalidInput``
for a spec the provider would refuse, ``SecretError`` for missing credentials,
``RemoteServiceError`` (with ``status`` and a next step) for what the provider answered,
``PermissionDenied`` for quota, rules or ownership; a transient failure (timeout, 429, 5xx) is
a ``TransientRemoteError`` so that the job code retries it with backoff.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from mltrainer.state.errors import RemoteServiceError

RuntimeName = Literal["local", "modal", "kaggle"]
RemoteStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_REMOTE: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


class TransientRemoteError(RemoteServiceError):
    """A failure worth retrying with backoff: a timeout, a dropped connection, 429 or 5xx."""


class Resources(BaseModel):
    """What a run asks of the machine it runs on."""

    gpu: str | None = Field(
        default=None, description="A GPU type of the catalogue (e.g. 'T4', 'L4'); None: CPU only."
    )
    gpu_count: int = Field(default=1, ge=1, le=8)
    cpu: float | None = Field(default=None, gt=0, description="Cores; None: the default.")
    memory_gb: float | None = Field(default=None, gt=0, description="None: the default.")
    timeout_s: int = Field(ge=60, description="The run is stopped, and paid for, up to this.")
    parallel: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Containers (or sessions) the run may use at once, each with these "
        "resources: the engine's fan-out of candidate fits. The estimate counts every one.",
    )


class RemoteSpec(BaseModel):
    """Everything a runtime needs to run one job elsewhere."""

    job_id: str = Field(description="Submission is idempotent per job: the name it is found by.")
    kind: Literal["engine", "deep", "script"]
    run_dir: Path = Field(description="The folder shipped: the entry script, helpers, config.")
    entry: str = Field(description="The script to run, relative to run_dir, e.g. 'train.py'.")
    input_dir: Path | None = Field(default=None, description="Data shipped to the run, if any.")
    dataset_ref: str | None = Field(
        default=None,
        description="A kaggle:/kaggle-competition: reference a Kaggle kernel mounts directly "
        "instead of uploading input_dir.",
    )
    requirements: list[str] = Field(default_factory=list, description="Pinned pip requirements.")
    resources: Resources
    secrets: list[str] = Field(
        default_factory=list, description="secret://NAME references to inject, by name."
    )
    outputs: list[str] = Field(
        default_factory=list, description="Paths in the output folder to bring back; [] = all."
    )
    internet: bool = False
    title: str = Field(default="", description="A human title (Kaggle kernels show it).")


class CostEstimate(BaseModel):
    usd: float = Field(description="The most the run can cost: its resources until the timeout.")
    usd_per_hour: float
    basis: str = Field(description="How it was computed, e.g. 'L4 $0.80/h + 4 CPU ... × 1.0 h'.")
    prices_as_of: date = Field(description="When the prices were taken from the provider.")
    free: bool = Field(default=False, description="Within a free quota (Kaggle).")


class SpecProblem(BaseModel):
    field: str
    message: str = Field(description="What the provider would refuse, and what to do instead.")


class Handle(BaseModel):
    """A submitted run, as recorded on the job row: enough to re-attach after a restart."""

    runtime: RuntimeName
    remote_id: str
    url: str | None = None


class RemoteState(BaseModel):
    status: RemoteStatus
    message: str = ""
    cost_usd: float | None = Field(default=None, description="Actual cost, where reported.")


class LogChunk(BaseModel):
    text: str = Field(description="New log text since the cursor (masked by the caller).")
    cursor: str | None = Field(description="Pass back to read on from here.")


class CancelOutcome(BaseModel):
    stopped: bool
    message: str = Field(
        description="What happened; where the provider cannot stop the run, that it may go on "
        "until its timeout."
    )


class Runtime(Protocol):
    name: RuntimeName

    def validate(self, spec: RemoteSpec) -> list[SpecProblem]:
        """What the provider would refuse (GPU names, CPU/memory ranges, time limits, slug
        rules, data size limits); no network needed."""
        ...

    def estimate_cost(self, spec: RemoteSpec) -> CostEstimate: ...

    def find(self, job_id: str) -> Handle | None:
        """An earlier submission of this job, if the provider has one (a server that died
        between submitting and recording it must not submit, and pay, twice)."""
        ...

    def upload(self, spec: RemoteSpec) -> None:
        """Ship the run folder and ``input_dir`` where the run will read them (a Modal Volume,
        a private Kaggle dataset). Idempotent: the job code calls it in its own retried stage
        before ``submit``, and again after a restart; a runtime that ships nothing ahead of
        the submission does nothing here."""
        ...

    def submit(self, spec: RemoteSpec) -> Handle: ...

    def status(self, handle: Handle) -> RemoteState: ...

    def logs(self, handle: Handle, cursor: str | None) -> LogChunk: ...

    def fetch(self, handle: Handle, dest: Path) -> list[Path]:
        """Download the run's output folder into ``dest``; the paths written."""
        ...

    def cancel(self, handle: Handle) -> CancelOutcome: ...

"""The light, typed results of the runtimes: the guard's report, a script job's request and
outcome, and what a job view shows of a run elsewhere. No SDK, sandbox or engine import here:
the server reads these at start-up.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.runtimes.base import CostEstimate, RemoteStatus, Resources, RuntimeName
from mltrainer.tools.runtimes.sample import SampleReport


class ScriptRequest(BaseModel):
    """submit_training: a training script the assistant wrote, to run on a runtime."""

    script: str = Field(max_length=1_000_000)
    runtime: RuntimeName = "local"
    dataset: str | None = Field(default=None, description="As the caller gave it.")
    requirements: list[str] = Field(default_factory=list)
    gpu: str | None = None
    cpu: float | None = Field(default=None, gt=0)
    memory_gb: float | None = Field(default=None, gt=0)
    timeout_s: int = Field(default=3600, ge=60)
    max_cost_usd: float | None = Field(default=None, ge=0)
    outputs: list[str] = Field(default_factory=list)
    secrets: list[str] = Field(default_factory=list)


class Check(BaseModel):
    name: str
    ok: bool
    detail: str


class DryRun(BaseModel):
    ok: bool
    status: str = Field(description="The sandbox's: ok, error, timeout, killed.")
    duration_s: float
    backend: str
    written: list[str] = Field(default_factory=list, description="Files in the output folder.")
    missing: list[str] = Field(default_factory=list, description="Outputs asked for, not written.")
    sample: SampleReport | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    problem: str | None = Field(default=None, description="Why it failed, in one sentence.")


class GuardReport(BaseModel):
    ok: bool
    mode: Literal["dry_run", "submission"] = Field(
        description="'dry_run': only the guard ran (dry_run=True); nothing was submitted."
    )
    runtime: str
    checks: list[Check]
    resources: Resources
    estimate: CostEstimate
    cap_usd: float
    cap_from: str = Field(description="'max_cost_usd' (the call) or 'MLTRAINER_MAX_COST_USD'.")
    dry_run: DryRun | None = None

    def refusals(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def raise_if_refused(self) -> None:
        failed = self.refusals()
        if not failed:
            return
        reasons = "; ".join(f"{check.name}: {check.detail}" for check in failed)
        raise PreflightRefused(
            f"Refused before anything was sent to {self.runtime} or paid for — {reasons}",
            next_step="Fix what is named and call again (dry_run=True runs only these checks).",
        )


class PreflightRefused(InvalidInput):
    """A run the pre-flight guard refused; nothing was submitted."""


class ScriptOutcome(BaseModel):
    """The result of a script job (submit_training): what came back and how the run ended."""

    kind: Literal["script"] = "script"
    runtime: RuntimeName
    status: RemoteStatus
    message: str = ""
    outputs: dict[str, str] = Field(
        default_factory=dict, description="Output name -> the path of the file it came back as."
    )
    log_tail: str = Field(default="", description="The end of the run's log (masked).")
    cost_usd: float | None = None


class RemoteRun(BaseModel):
    """What a job view shows of a run elsewhere."""

    remote_id: str | None = None
    url: str | None = None
    state: str | None = Field(default=None, description="'submitting' or 'submitted'.")
    resources: Resources | None = None
    estimated_cost_usd: float | None = Field(default=None, description="At most, until timeout.")
    cost_usd: float | None = Field(default=None, description="As the provider reported it.")
    prices_as_of: date | None = None

"""This machine, behind the same ``Runtime`` contract.

A train job with ``runtime="local"`` runs as it always has, in its worker (tools/jobs/train);
this runtime is what the guard checks it against (free, no GPU). A script
(``submit_training(runtime="local")``) runs in the local sandbox with the same contract as
elsewhere: its data in ``MLTRAINER_INPUT_DIR``, what it writes to ``MLTRAINER_OUTPUT_DIR``
comes back as the job's artifacts. It runs in the job's worker, in a thread of it: a worker
that dies takes the run with it, so ``find`` never finds one and a resumed job runs the
script again (at no cost). The sandbox never sees credentials: named secrets are refused.
"""

from __future__ import annotations

import os
import shutil
import threading
from datetime import date
from pathlib import Path

from mltrainer.sandbox.calls import StopSignal
from mltrainer.sandbox.manager import SandboxManager
from mltrainer.sandbox.models import RunResult
from mltrainer.state.errors import JobStateError
from mltrainer.state.settings import Settings
from mltrainer.tools.runtimes.base import (
    CancelOutcome,
    CostEstimate,
    Handle,
    LogChunk,
    RemoteSpec,
    RemoteState,
    RuntimeName,
    SpecProblem,
)
from mltrainer.tools.runtimes.guard import OUTPUT, run_in_sandbox

MAX_TIMEOUT_S = 24 * 3600  # the sandbox's own limit


class LocalRun:
    """One script running in the sandbox, in a thread of this process."""

    def __init__(self) -> None:
        self.stop = StopSignal()
        self.done = threading.Event()
        self.result: RunResult | None = None
        self.error: str | None = None


class LocalRuntime:
    name: RuntimeName = "local"

    def __init__(self, settings: Settings, sandbox: SandboxManager | None = None) -> None:
        self.settings = settings
        self.sandbox = sandbox
        self._runs: dict[str, LocalRun] = {}

    def validate(self, spec: RemoteSpec) -> list[SpecProblem]:
        res = spec.resources
        problems = []
        if res.gpu is not None:
            problems.append(
                SpecProblem(
                    field="gpu",
                    message="runtime='local' runs in this machine's sandbox, without a GPU: "
                    "use runtime='modal' or 'kaggle' for one.",
                )
            )
        if spec.secrets:
            problems.append(
                SpecProblem(
                    field="secrets",
                    message="the local sandbox never sees credentials: use a remote runtime "
                    "for a script that needs a secret.",
                )
            )
        if res.timeout_s > MAX_TIMEOUT_S:
            problems.append(
                SpecProblem(field="timeout_s", message="the sandbox runs a script 24 h at most.")
            )
        cores = os.cpu_count() or 1
        if res.parallel > cores:
            problems.append(
                SpecProblem(
                    field="parallel",
                    message=f"this machine has {cores} cores: parallel <= {cores}.",
                )
            )
        return problems

    def estimate_cost(self, spec: RemoteSpec) -> CostEstimate:
        return CostEstimate(
            usd=0.0, usd_per_hour=0.0, basis="this machine", prices_as_of=date.today(), free=True
        )

    def upload(self, spec: RemoteSpec) -> None:
        return None  # the sandbox reads the job's folder where it is

    def find(self, job_id: str) -> Handle | None:
        return None  # a run here ended with the worker that ran it

    def submit(self, spec: RemoteSpec) -> Handle:
        if self.sandbox is None:
            raise JobStateError("The local runtime runs scripts only inside a job worker.")
        sandbox = self.sandbox
        run = LocalRun()
        handle = Handle(runtime="local", remote_id=f"local-{spec.job_id}")
        self._runs[handle.remote_id] = run

        def target() -> None:
            try:
                run.result = run_in_sandbox(
                    spec,
                    sandbox,
                    self.settings,
                    data=spec.input_dir,
                    dry=False,
                    timeout_s=spec.resources.timeout_s,
                    stop=run.stop,
                )
            except Exception as exc:  # handed to status(): the job records it as the failure
                run.error = f"{type(exc).__name__}: {exc}"
            finally:
                run.done.set()

        threading.Thread(target=target, name=f"local:{spec.job_id}", daemon=True).start()
        return handle

    def _run(self, handle: Handle) -> LocalRun:
        run = self._runs.get(handle.remote_id)
        if run is None:
            raise JobStateError(f"No local run {handle.remote_id} in this worker.")
        return run

    def status(self, handle: Handle) -> RemoteState:
        run = self._run(handle)
        if not run.done.is_set():
            return RemoteState(status="running")
        if run.stop.stopped:
            return RemoteState(status="cancelled", message=run.stop.reason or "")
        if run.result is None or run.result.status != "ok":
            why = run.error or (run.result.reason if run.result else None) or "it failed"
            status = run.result.status if run.result else "error"
            return RemoteState(status="failed", message=f"the sandbox run ended {status}: {why}")
        return RemoteState(status="succeeded")

    def logs(self, handle: Handle, cursor: str | None) -> LogChunk:
        run = self._run(handle)
        if cursor == "end" or not run.done.is_set() or run.result is None:
            return LogChunk(text="", cursor=cursor)
        text = run.result.stdout + (f"\n{run.result.stderr}" if run.result.stderr else "")
        return LogChunk(text=text, cursor="end")

    def fetch(self, handle: Handle, dest: Path) -> list[Path]:
        run = self._run(handle)
        if run.result is None:
            return []
        output = Path(run.result.workspace) / OUTPUT
        if output.is_dir():
            shutil.copytree(output, dest, dirs_exist_ok=True)
        return sorted(p for p in dest.rglob("*") if p.is_file())

    def cancel(self, handle: Handle) -> CancelOutcome:
        run = self._runs.get(handle.remote_id)
        if run is not None:
            run.stop.stop("Cancelled at the caller's request.")
        return CancelOutcome(stopped=True, message="The sandbox running the script was stopped.")

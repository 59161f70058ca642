"""Long run_code calls as jobs the caller polls.

A client gives up on a request after about a minute (the TypeScript SDK's default is 60 s),
while ``timeout_s`` may be up to an hour. A run too long to wait for becomes a job of kind
``code``: created 'running', run in a thread of this server, and finished with its
``RunResult`` as the result -- 'succeeded' when the code ran to the end without error,
'failed' otherwise (the result still holds its output), 'cancelled' by ``cancel_job``.
The job supervisor manages only training jobs; these are this module's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from mltrainer.sandbox.calls import Call, StopSignal
from mltrainer.sandbox.models import CodeRequest, RunResult
from mltrainer.sandbox.owner import process_alive
from mltrainer.state.errors import InvalidInput, JobStateError, MLTrainerError
from mltrainer.state.models import TERMINAL, JobRecord, JobStatus, utcnow
from mltrainer.state.store import Store

log = logging.getLogger("mltrainer.sandbox")

KIND = "code"
CANCELLED = (
    "Cancelled at the caller's request (cancel_job); every process of its sandbox was killed."
)
JOIN_S = 30.0


class CodeJobs:
    """The code jobs this server runs, and cancelling them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._running: dict[str, tuple[StopSignal, threading.Thread]] = {}

    def create(self, request: CodeRequest) -> JobRecord:
        """The job, 'running' from the start (nothing queues it: this server runs it now)."""
        job = self.store.create_job(KIND, request.model_dump(mode="json"))
        return self.store.update_job(
            job.id,
            status="running",
            started_at=utcnow(),
            attempt=1,
            message=f"Running in the sandbox (timeout {request.timeout_s:g} s).",
        )

    def launch(self, job_id: str, call: Call, execute: Callable[[Call], RunResult]) -> None:
        """Run ``execute(call)`` for the job in a thread of its own; it records the result."""
        call.job_id = job_id
        thread = threading.Thread(
            target=self._run, args=(job_id, call, execute), daemon=True, name=f"code-{job_id}"
        )
        with self._lock:
            self._running[job_id] = (call.stop, thread)
        thread.start()

    def _run(self, job_id: str, call: Call, execute: Callable[[Call], RunResult]) -> None:
        try:
            result = execute(call)
        except MLTrainerError as exc:
            self._finish(job_id, "failed", None, str(exc))
        except Exception as exc:  # a bug: the job must still end, and say so
            log.exception("code job %s failed", job_id)
            self._finish(job_id, "failed", None, f"Internal error: {type(exc).__name__}: {exc}")
        else:
            status, error = self._verdict(job_id, result)
            self._finish(job_id, status, result, error)
        finally:
            with self._lock:
                self._running.pop(job_id, None)

    def _verdict(self, job_id: str, result: RunResult) -> tuple[JobStatus, str | None]:
        if self.store.get_job(job_id).cancel_requested:
            return "cancelled", CANCELLED
        if result.status == "ok":
            return "succeeded", None
        detail = result.reason or _last_line(result.stderr) or "see stderr in the result"
        return "failed", f"The code ended with status '{result.status}': {detail}"

    def _finish(
        self, job_id: str, status: JobStatus, result: RunResult | None, error: str | None
    ) -> None:
        summary = f"run_code {result.status} in {result.duration_s:.3f}s" if result else error
        self.store.update_job(job_id, message=f"Ended: {summary or status}.")
        self.store.add_event(
            job_id, summary or status, level="info" if status == "succeeded" else "warning"
        )
        payload = result.model_dump(mode="json") if result is not None else None
        self.store.finish_job(job_id, status, result=payload, error=error)

    def cancel(self, job_id: str) -> JobRecord:
        """Stop a code job: kill its sandbox now and record it cancelled, with its output."""
        job = self.store.get_job(job_id)
        if job.kind != KIND:
            raise InvalidInput(
                f"Job {job_id} is a '{job.kind}' job, not a code job.",
                next_step="Cancel it with cancel_job, which handles every kind.",
            )
        if job.status in TERMINAL:
            raise JobStateError(
                f"Job {job_id} already {job.status}; there is nothing to cancel.",
                next_step="Use job_status to read its result.",
            )
        self.store.update_job(job_id, cancel_requested=True)
        with self._lock:
            running = self._running.get(job_id)
        if running is not None:
            stop, thread = running
            stop.stop(CANCELLED)
            thread.join(timeout=JOIN_S)  # it records the result and the cancellation
        elif not self._owner_alive(job_id):
            self.store.add_event(job_id, CANCELLED, level="warning")
            self.store.finish_job(job_id, "cancelled", error=CANCELLED)
        # Otherwise another server sharing this database runs it: it sees cancel_requested
        # at its next look (watch) and stops it.
        return self.store.get_job(job_id)

    def _owner_alive(self, job_id: str) -> bool:
        run = self.store.run_of_job(job_id)
        return run is not None and process_alive(run.owner_pid, run.owner_started)

    def watch(self) -> None:
        """Stop the jobs whose cancellation was asked for elsewhere (another server's tool)."""
        with self._lock:
            running = list(self._running.items())
        for job_id, (stop, _) in running:
            if not stop.stopped and self.store.get_job(job_id).cancel_requested:
                stop.stop(CANCELLED)

    def stop_all(self, reason: str) -> list[threading.Thread]:
        with self._lock:
            running = list(self._running.values())
        for stop, _ in running:
            stop.stop(reason)
        return [thread for _, thread in running]


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""

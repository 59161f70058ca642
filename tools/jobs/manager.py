"""Starting, watching, recovering and cancelling job workers (used by the server process).

``procs`` (and psutil with it) is imported where a worker is started, watched or stopped:
a server with no job running never needs it, and it costs start-up time.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from mltrainer.state.errors import JobStateError
from mltrainer.state.models import TERMINAL, JobRecord
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.jobs.spare import SpareWorker
from mltrainer.tools.runtimes.models import ScriptRequest
from mltrainer.tools.training.request import TrainRequest

WORKER_MODULE = "mltrainer.tools.jobs.worker"
SETTINGS_ENV = "MLTRAINER_WORKER_SETTINGS"

# Job kinds that run in a worker process. Other kinds (e.g. 'code' runs in the server's
# sandbox) only use the jobs table for their status; the manager never starts, resumes or
# fails them, and cancels them through the hook their owner registers (on_cancel).
WORKER_KINDS = frozenset({"train", "script"})

# What a worker job is asked to do; its kind follows from the request's type.
JobRequest = TrainRequest | ScriptRequest
KIND_OF: dict[type[JobRequest], str] = {TrainRequest: "train", ScriptRequest: "script"}
CANCELLED = "Cancelled at the caller's request."
SPARE_REST_S = 20.0  # after a job, how long no worker runs before the next spare starts


class JobManager:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._cancel_hooks: dict[str, Callable[[str], object]] = {}
        # Held while a job is claimed and its worker started, so recover() never sees it half-way.
        self._lock = threading.RLock()
        self._spare = SpareWorker(settings)
        self._spare_wanted = settings.spare_worker  # at start, then after each job
        # Since when no job's worker runs, as first seen after one ran (the spare's rest counts
        # from there); None while one runs, and long enough ago at start.
        self._idle_since: float | None = -SPARE_REST_S

    # -- starting -----------------------------------------------------------------------
    def submit(
        self,
        request: JobRequest,
        *,
        job_id: str | None = None,
        prepare: Callable[[JobRecord], object] | None = None,
        **fields: Any,
    ) -> JobRecord:
        """Record the job and start it (or queue it behind the running ones).

        A remote job comes with the id its run folder was prepared under, its runtime fields,
        and ``prepare``, which records what its worker will need (the checked spec) before any
        worker can start it.
        """
        kind = KIND_OF[type(request)]
        with self._lock:
            job = self.store.create_job(
                kind, request.model_dump(mode="json"), job_id=job_id, **fields
            )
            if prepare is not None:
                prepare(job)
        self.start_queued()
        return self.store.get_job(job.id)

    def start_queued(self) -> None:
        """Start queued jobs, oldest first, while fewer than the limit are running."""
        limit = self.settings.max_concurrent_jobs
        with self._lock:
            running = sum(job.kind in WORKER_KINDS for job in self.store.jobs_in("running"))
            queued = sorted(
                (job for job in self.store.jobs_in("queued") if job.kind in WORKER_KINDS),
                key=lambda job: job.created_at,
            )
            for position, job in enumerate(queued):
                if running < limit and self._claim_and_start(job):
                    running += 1
                    continue
                waiting = f"Queued: {running} job(s) running, {position} ahead of this one"
                self.store.update_job(
                    job.id,
                    message=f"{waiting} (at most {limit} at once: MLTRAINER_MAX_CONCURRENT_JOBS).",
                )

    def _launch(self, job: JobRecord) -> bool:
        with self._lock:
            return self._claim_and_start(job)

    def _claim_and_start(self, job: JobRecord) -> bool:
        from mltrainer.tools.jobs import procs

        if not self.store.claim_job(job.id, job.attempt):
            return False
        attempt = job.attempt + 1
        proc = self._spare.hand(job.id, attempt)
        if proc is None:
            log_path = self.settings.jobs_dir / job.id / "worker.log"
            proc = procs.spawn(
                ["-m", WORKER_MODULE, job.id, str(attempt)],
                log_path=log_path,
                env=self._worker_env(),
                cwd=log_path.parent,
            )
        self._spare_wanted = self.settings.spare_worker
        self._idle_since = None
        self._children[job.id] = proc
        self.store.update_job(
            job.id, worker_pid=proc.pid, worker_started=procs.start_time(proc.pid)
        )
        return True

    def _worker_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env[SETTINGS_ENV] = self.settings.model_dump_json()
        env["MLTRAINER_HOME"] = str(self.settings.home)
        env.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
        return env

    def keep_spare(self) -> None:
        """Start the spare worker (spare.py) when one is wanted (at start, and after a job took
        it), once no job's worker has run for SPARE_REST_S: it never competes for memory with
        a job, nor with what the caller does next with its model (predict or analyse it in the
        server: server and new spare together reached 547 MB after mixed_100k's job, whose own
        peak was 496 MB)."""
        with self._lock:
            if not self._spare_wanted or self._spare.running():
                return
            now = time.monotonic()
            if any(proc.poll() is None for proc in self._children.values()) or any(
                job.kind in WORKER_KINDS for job in self.store.jobs_in("running")
            ):
                self._idle_since = None
                return
            if self._idle_since is None:
                self._idle_since = now
            if now - self._idle_since < SPARE_REST_S:
                return
            self._spare_wanted = False
            self._spare.start(WORKER_MODULE, self._worker_env())

    # -- watching -----------------------------------------------------------------------
    def _worker_alive(self, job: JobRecord) -> bool:
        from mltrainer.tools.jobs import procs

        with self._lock:
            child = self._children.get(job.id)
        if child is not None:
            if child.poll() is None:
                return True
            with self._lock:
                self._children.pop(job.id, None)
            return False
        return procs.alive(job.worker_pid, job.worker_started)

    def recover(self) -> list[str]:
        """Resume or fail every unfinished job whose worker is gone; return what was done.

        Called at start-up (a server or machine that died left jobs 'running') and then
        periodically, so a worker killed while the server runs is noticed too.
        """
        notes = []
        for job in self.store.jobs_in("running"):
            if job.kind not in WORKER_KINDS:
                continue
            with self._lock:
                note = self._recover_one(job)
            if note:
                notes.append(note)
        self.start_queued()
        return notes

    def _recover_one(self, job: JobRecord) -> str | None:
        job = self.store.get_job(job.id)
        if job.status in TERMINAL or self._worker_alive(job):
            return None
        if job.cancel_requested:
            self.store.finish_job(job.id, "cancelled", error="Cancelled at the caller's request.")
            return f"{job.id}: cancelled"
        stage = self._last_stage(job.id)
        during = f" during stage {stage!r}" if stage else ""
        if job.attempt < self.settings.job_max_attempts:
            self.store.add_event(
                job.id,
                f"The worker (pid {job.worker_pid}) stopped without finishing{during}; "
                "resuming from the last completed stage.",
                level="warning",
            )
            return f"{job.id}: resumed" if self._launch(job) else None
        reason = (
            f"The worker stopped without finishing {job.attempt} times (last{during}). "
            f"Read the job log (mltrainer://jobs/{job.id}/log) and start a new job, "
            "perhaps with a smaller time budget or dataset."
        )
        if job.runtime != "local":  # nobody watches the remote run any more: stop paying
            reason += " " + self._cancel_remote(job)
        self.store.add_event(job.id, reason, level="error")
        self.store.finish_job(job.id, "failed", error=reason)
        return f"{job.id}: failed"

    def _last_stage(self, job_id: str) -> str | None:
        running = [s.name for s in self.store.stages(job_id) if s.status == "running"]
        return running[-1] if running else None

    # -- cancelling ---------------------------------------------------------------------
    def on_cancel(self, kind: str, hook: Callable[[str], object]) -> None:
        """Let the owner of jobs of ``kind`` that run in the server (not in a worker) stop one:
        ``cancel`` calls ``hook(job_id)`` before recording the job as cancelled."""
        self._cancel_hooks[kind] = hook

    def cancel(self, job_id: str) -> JobRecord:
        from mltrainer.tools.jobs import procs

        job = self.store.get_job(job_id)
        if job.status in TERMINAL:
            raise JobStateError(
                f"Job {job_id} already {job.status}; there is nothing to cancel.",
                next_step="Use job_status to read its result.",
            )
        self.store.update_job(job_id, cancel_requested=True)
        hook = self._cancel_hooks.get(job.kind)
        if hook is not None:
            hook(job_id)
        if job.worker_pid:
            procs.stop_tree(job.worker_pid, job.worker_started, grace_s=3.0)
        with self._lock:
            child = self._children.pop(job_id, None)
        if child is not None:
            child.wait(timeout=5)
        # The worker is gone: now nothing can submit after the remote run was stopped.
        note = self._cancel_remote(self.store.get_job(job_id))
        message = f"{CANCELLED} {note}".strip()
        self.store.add_event(job_id, message, level="warning")
        finished = self.store.finish_job(job_id, "cancelled", error=message)
        if note and finished.status == "cancelled" and finished.error != message:
            # the worker, stopped above, recorded its own end first: add what the provider said
            self.store.update_job(job_id, error=message)
            finished = self.store.get_job(job_id)
        return finished

    def _cancel_remote(self, job: JobRecord) -> str:
        if job.runtime == "local" or job.remote_state is None:
            return ""
        from mltrainer.tools.jobs.remote import cancel_remote

        return cancel_remote(job, self.settings, self.store)

    def shutdown(self) -> None:
        """Stop the spare; leave running workers alone (they outlive the server) but reap
        finished ones."""
        with self._lock:
            self._spare.stop()
            for proc in self._children.values():
                proc.poll()

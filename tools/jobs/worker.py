"""The worker process: ``python -P -m mltrainer.tools.jobs.worker JOB_ID ATTEMPT``, or
``... worker --spare``, started ahead and handed its job later (spare.py).

It runs one attempt of one job and records how it ended. Cancellation arrives as SIGTERM
to the worker's process group; the worker then kills the group at once (everything it
started goes with it) and the server, which asked, records the job as cancelled.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

from mltrainer.state.errors import MLTrainerError
from mltrainer.state.models import TERMINAL, JobRecord
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.jobs import spare
from mltrainer.tools.jobs.context import JobCancelled, JobContext
from mltrainer.tools.jobs.manager import SETTINGS_ENV
from mltrainer.tools.jobs.procs import start_time


def _runner(job: JobRecord) -> Callable[[JobContext], dict[str, Any]]:
    deep = job.request.get("engine") == "deep"  # a rendered template: a script job's road
    if job.kind == "train" and job.runtime == "local" and not deep:
        from mltrainer.tools.jobs.train import run_train_job

        return run_train_job
    if job.kind == "train":  # the same engine on Modal or Kaggle: the worker orchestrates
        from mltrainer.tools.jobs.remote import run_remote_train_job

        return run_remote_train_job
    if job.kind == "script":  # submit_training, on any runtime
        from mltrainer.tools.jobs.remote import run_script_job

        return run_script_job
    raise MLTrainerError(f"Unknown job kind '{job.kind}'.")


def _on_sigterm(signum: int, frame: object) -> None:
    # Stop now, with everything this worker started; a clean exit could wait on C code.
    # (POSIX only: on Windows the server stops the worker's process tree itself.)
    os.killpg(os.getpgid(0), signal.SIGKILL)


def run(job_id: str, attempt: int, settings: Settings) -> int:
    vault = SecretVault.for_settings(settings)
    store = Store(settings.db_path, vault.masker())
    job = store.get_job(job_id)
    if job.status in TERMINAL or job.attempt != attempt:
        return 0  # another attempt owns this job now
    store.update_job(job_id, worker_pid=os.getpid(), worker_started=start_time(os.getpid()))
    ctx = JobContext(store, store.get_job(job_id), settings, vault)
    if attempt > 1:
        ctx.event(
            f"Attempt {attempt}: resuming after the previous worker stopped.", level="warning"
        )
    try:
        result = _runner(job)(ctx)
    except JobCancelled:
        store.finish_job(job_id, "cancelled", error="Cancelled at the caller's request.")
        return 0
    except MLTrainerError as exc:
        ctx.event(str(exc), level="error")
        store.finish_job(job_id, "failed", error=str(exc))
        return 1
    except MemoryError:
        message = (
            "The job ran out of memory. Try a smaller time budget, a sample, or fewer columns."
        )
        store.finish_job(job_id, "failed", error=message)
        return 1
    except Exception as exc:
        ctx.event(traceback.format_exc(limit=12), level="error")
        store.finish_job(job_id, "failed", error=f"Internal error: {type(exc).__name__}: {exc}")
        return 1
    store.finish_job(job_id, "succeeded", result=result)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if hasattr(os, "killpg"):
        signal.signal(signal.SIGTERM, _on_sigterm)
    raw = os.environ.get(SETTINGS_ENV)
    settings = Settings.model_validate_json(raw) if raw else Settings()
    if args == [spare.FLAG]:
        handed = spare.wait_for_job(settings.spare_worker_idle_s)
        if handed is None:
            return 0
        job_id, attempt = handed
        spare.into_job_folder(settings, job_id)
    else:
        job_id, attempt = args[0], int(args[1])
    return run(job_id, attempt, settings)


def exit_now(code: int) -> None:
    """End the process once the job is recorded, without tearing its heap down object by object
    (a second or more after a large training: memory the next call's work could use)."""
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())

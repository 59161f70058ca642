"""The spare worker: one job worker started ahead, its libraries loaded, waiting for a job.

A cold worker spends its first seconds starting Python and importing what training needs
(pandas and pyarrow to read, scikit-learn to profile, skops, which imports all of
scikit-learn, to save the first model): about 3 s on a 2-core machine, inside the caller's
budget and before the first model (#17). The server keeps one worker that has done this
already (``python -m mltrainer.tools.jobs.worker --spare``) and hands it the next job on its
standard input. The job then runs as in a cold worker: same module, same environment, its own
folder and log.

A job handed over while the spare is still importing takes it over between two steps, so it
never waits longer than a worker started for it. The spare holds about 200 MB while it waits,
so the manager starts it only when no job's worker has run for a while (with the server, and
again after each job), and it leaves after ``spare_worker_idle_s`` without a job, or when the
server goes (its standard input closes).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from mltrainer.state.settings import Settings

FLAG = "--spare"
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a job's folder name: nothing that leaves jobs/
# A spare this close to its idle limit is stopped, not handed a job it might leave unread.
MARGIN_S = 30.0


class SpareWorker:
    """The server's side: the one spare process, started and handed a job by the manager."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self, module: str, env: dict[str, str]) -> None:
        from mltrainer.tools.jobs import procs

        jobs_dir = self.settings.jobs_dir
        self.proc = procs.spawn(
            ["-m", module, FLAG],
            log_path=jobs_dir / "spare.log",
            env=env,
            cwd=jobs_dir,
            piped=True,
        )
        self.started = time.monotonic()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def hand(self, job_id: str, attempt: int) -> subprocess.Popen[bytes] | None:
        """The spare, now the worker of ``job_id``'s attempt; None when there is no spare
        fit for it (gone, or about to leave), and the job needs a worker of its own."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None or proc.stdin is None:
            return None
        if time.monotonic() - self.started > self.settings.spare_worker_idle_s - MARGIN_S:
            _end(proc)
            return None
        try:
            proc.stdin.write(f"{job_id} {attempt}\n".encode())
            proc.stdin.close()
        except OSError:  # it left just now
            _end(proc)
            return None
        return proc

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            _end(proc)


def _end(proc: subprocess.Popen[bytes]) -> None:
    """Close the spare's input (it leaves on its own) and reap it; kill it if it lingers."""
    try:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=2)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()


# -- the worker's side ------------------------------------------------------------------------
def _readers() -> None:
    """pyarrow (with the allocator a job's start picks) and pandas, to load the table, and the
    job's own module."""
    from mltrainer.tools.machine import load_arrow

    load_arrow()
    import pyarrow.csv
    import pyarrow.parquet  # noqa: F401

    import mltrainer.tools.jobs.train  # noqa: F401


def _profiler() -> None:
    """The profile's checks (scikit-learn's trees and folds)."""
    import sklearn.model_selection
    import sklearn.tree  # noqa: F401

    import mltrainer.tools.profiling.profile  # noqa: F401


def _engine() -> None:
    """The engine, and skops to save its first model (which lists every scikit-learn
    estimator: imports all of scikit-learn)."""
    import mltrainer.tools.training.automl
    import mltrainer.tools.training.engine.tabular  # noqa: F401
    from mltrainer.tools.training.trusted import skops_io

    skops_io()


# In the order a job needs them: a job handed over half-way skips the rest (it imports what it
# uses as a worker started for it would), so a job that comes at once waits for no more.
WARM_STEPS = (_readers, _profiler, _engine)


def wait_for_job(idle_s: float) -> tuple[str, int] | None:
    """Warm up, then the job this spare is handed (``JOB_ID ATTEMPT`` on a line of standard
    input); None when the server leaves (input closed) or ``idle_s`` passes without a job."""
    lines: list[bytes] = []
    handed = threading.Event()

    def read() -> None:
        lines.append(sys.stdin.buffer.readline())
        handed.set()

    threading.Thread(target=read, daemon=True).start()
    for step in WARM_STEPS:
        if handed.is_set():
            break
        try:
            step()
        except Exception:  # the job itself will report what cannot be imported
            import traceback

            traceback.print_exc()
    sys.stdout.flush()
    handed.wait(idle_s)
    words = lines[0].decode(errors="replace").split() if lines else []
    if len(words) != 2 or not JOB_ID.fullmatch(words[0]) or not words[1].isdigit():
        return None
    return words[0], int(words[1])


def into_job_folder(settings: Settings, job_id: str) -> None:
    """Run in the job's folder and write to its log, as a worker started for it would."""
    folder: Path = settings.jobs_dir / job_id
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(folder / "worker.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)

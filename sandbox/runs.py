"""What a run_code call returns and what is kept of it.

Every call gets a row in the store's ``sandbox_runs`` table (runs are not jobs): written as
'running' when it starts, with the owning server's pid, and completed when it ends with its
status, duration, exit code and the (masked) end of its output. A run still 'running' whose
server has died is marked 'lost' when a server next starts, and the code job it ran for, if
any, is failed with a message saying why.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

from mltrainer.sandbox.kernel import CallOutcome
from mltrainer.sandbox.limits import Limits
from mltrainer.sandbox.models import SYNC_LIMIT_S, ImageInfo, RunResult, RunSummary
from mltrainer.sandbox.owner import Owner, process_alive
from mltrainer.sandbox.paths import changed, read_inside, snapshot
from mltrainer.state.models import RUN_TAIL_CHARS, TERMINAL, RunRecord, utcnow
from mltrainer.state.store import Store, new_id

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KEEP_RUN_RECORDS = 1000
PRUNE_EVERY = 50  # runs recorded between two prunings of the table
KEEP_WORKSPACES = 100  # workspaces of session-less calls kept on disk
RESTARTED_NOTE = (
    "The session's interpreter had stopped since the last call ({why}); this call ran in a "
    "fresh one, so variables from earlier calls are gone (files in the workspace stay)."
)


def next_step(result: RunResult, *, stopped: bool = False) -> str:
    """What the caller should do after this result (``stopped``: the host stopped it)."""
    session = result.session
    if result.status == "running":
        return (
            f"It runs as job {result.job_id}: call job_status(job_id='{result.job_id}') until "
            "it finishes (its result is this run's output); cancel_job stops it."
        )
    if result.status == "ok":
        if session:
            return f"Continue with run_code(session='{session}'); close_session when done."
        return "Done. A call without a session starts afresh; session='name' keeps variables."
    if result.status == "error":
        kept = session and not result.session_lost
        return "The code failed: read stderr, fix the code and run it again." + (
            f" The variables of session '{session}' are kept." if kept else ""
        )
    lost = ""
    if session and result.session_lost:
        lost = f" Session '{session}' lost its variables; its next call starts afresh."
    if result.status == "timeout":
        return (
            f"Run again with a larger timeout_s (up to 3600; above {SYNC_LIMIT_S:g} s the call "
            f"returns a job to poll), or make the code faster.{lost}"
        )
    if stopped:
        return f"It was stopped on purpose (see reason); run it again if it is still needed.{lost}"
    return f"See reason: use less memory or fewer processes, or a smaller sample.{lost}"


def build_result(
    outcome: CallOutcome,
    *,
    started: float,
    session: str | None,
    backend_name: str,
    backend_reason: str,
    isolated: bool,
    workspace: Path,
    before: dict[str, tuple[int, int]],
    limits: Limits,
) -> tuple[RunResult, list[bytes]]:
    """The caller's view of one call, and the bytes of the PNG images to attach."""
    images, blobs = _images(workspace, outcome.figures, limits)
    written = changed(before, snapshot(workspace))
    result = RunResult(
        status=outcome.status,  # type: ignore[arg-type]
        stdout=outcome.stdout,
        stderr=outcome.stderr,
        exit_code=outcome.exit_code,
        duration_s=round(time.monotonic() - started, 4),
        session=session,
        backend=backend_name,  # type: ignore[arg-type]
        backend_reason=backend_reason,
        isolated=isolated,
        files_written=written[:200],
        images=images,
        stdout_truncated_bytes=outcome.stdout_dropped,
        stderr_truncated_bytes=outcome.stderr_dropped,
        reason=outcome.reason,
        session_lost=session is not None and not outcome.alive,
        workspace=str(workspace),
    )
    result.next_step = next_step(result, stopped=outcome.stopped)
    return result, blobs


def _images(
    workspace: Path, figures: list[str], limits: Limits
) -> tuple[list[ImageInfo], list[bytes]]:
    infos: list[ImageInfo] = []
    blobs: list[bytes] = []
    cap = limits.max_image_bytes
    for rel in figures:
        data = read_inside(workspace, rel, cap)
        if data is None or not data.startswith(PNG_SIGNATURE):
            continue
        attach = len(data) <= cap and len(blobs) < limits.max_images
        infos.append(ImageInfo(path=rel, bytes=len(data), attached=attach))
        if attach:
            blobs.append(data)
    return infos, blobs


def new_workspace(root: Path) -> Path:
    """A fresh workspace for a session-less call, under ``root``."""
    workspace = root / f"run_{uuid.uuid4().hex[:12]}"
    workspace.mkdir(parents=True, mode=0o700)
    return workspace


def prune_workspaces(root: Path) -> None:
    """Keep the workspaces of the newest KEEP_WORKSPACES session-less calls."""
    try:
        runs = sorted(
            (entry for entry in os.scandir(root) if entry.is_dir()),
            key=lambda entry: entry.stat().st_mtime,
        )
    except OSError:
        return
    for entry in runs[:-KEEP_WORKSPACES]:
        shutil.rmtree(entry.path, ignore_errors=True)


class RunLog:
    """The runs table, as the sandbox writes it; does nothing without a store."""

    def __init__(self, store: Store | None, owner: Owner) -> None:
        self.store = store
        self.owner = owner
        self._finished = 0

    def start(
        self, *, session: str | None, backend: str, workspace: Path, job_id: str | None = None
    ) -> RunRecord | None:
        if self.store is None:
            return None
        record = RunRecord(
            id=new_id("run"),
            session=session,
            job_id=job_id,
            backend=backend,
            workspace=str(workspace),
            owner_pid=self.owner.pid,
            owner_started=self.owner.started,
        )
        return self.store.save_run(record)

    def finish(self, record: RunRecord | None, result: RunResult) -> None:
        if self.store is None or record is None:
            return
        record = record.model_copy(
            update={
                "status": result.status,
                "finished_at": utcnow(),
                "duration_s": result.duration_s,
                "exit_code": result.exit_code,
                "reason": result.reason,
                "stdout_tail": result.stdout[-RUN_TAIL_CHARS:],
                "stderr_tail": result.stderr[-RUN_TAIL_CHARS:],
            }
        )
        self.store.save_run(record)
        self._finished += 1
        if self._finished % PRUNE_EVERY == 1:
            self.store.prune_runs(KEEP_RUN_RECORDS)

    def abandon(self, record: RunRecord | None, reason: str) -> None:
        """The call never ran (its sandbox could not start, or it was cancelled first)."""
        if self.store is not None and record is not None:
            update = {"status": "killed", "finished_at": utcnow(), "reason": reason}
            self.store.save_run(record.model_copy(update=update))

    def recent(self, limit: int = 10) -> list[RunSummary]:
        if self.store is None:
            return []
        return [
            RunSummary(
                run_id=run.id,
                session=run.session,
                status=run.status,
                started_at=run.started_at,
                duration_s=run.duration_s,
                exit_code=run.exit_code,
                reason=run.reason,
                job_id=run.job_id,
            )
            for run in self.store.runs(limit=limit)
        ]


def mark_lost_runs(store: Store) -> list[str]:
    """Mark runs left 'running' by servers that died as lost, and fail their code jobs."""
    notes = []
    for run in store.runs(status="running", limit=10_000):
        if process_alive(run.owner_pid, run.owner_started):
            continue  # this server's, or another live server's sharing the database
        why = f"The server running it (pid {run.owner_pid}) stopped before the run finished."
        update = {"status": "lost", "finished_at": utcnow(), "reason": why}
        store.save_run(run.model_copy(update=update))
        notes.append(f"{run.id}: lost")
        if run.job_id is not None and store.get_job(run.job_id).status not in TERMINAL:
            error = (
                f"The server that ran this code (pid {run.owner_pid}) stopped before it "
                "finished, and its sandbox was stopped with it. Run the code again with run_code."
            )
            store.add_event(run.job_id, error, level="error")
            store.finish_job(run.job_id, "failed", error=error)
            notes.append(f"{run.job_id}: failed")
    return notes

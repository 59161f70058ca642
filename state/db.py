"""The SQLite database: connection settings and ordered, named migrations.

Each migration runs once, in a transaction, and is recorded in ``_migrations``.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sqlite3
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mltrainer.state.models import RUN_TAIL_CHARS

_import_lock = threading.Lock()


def _import_sqlite_utils() -> ModuleType:
    """Import sqlite-utils (once, on first connect) without the pandas and numpy it loads
    when they are installed.

    We never hand it DataFrames, and importing pandas costs over a second. sqlite-utils asks
    for them through ``importlib.import_module``; while it is being imported, that answers
    ImportError for those two in this thread only, so another thread importing pandas at the
    same moment is not disturbed. (On first connect rather than at import: the server opens
    the store in a background thread while it answers its client's handshake.)
    """
    with _import_lock:
        if "sqlite_utils" in sys.modules:
            return sys.modules["sqlite_utils"]
        real, importer = importlib.import_module, threading.get_ident()

        def without_dataframes(name: str, package: str | None = None) -> ModuleType:
            if name in ("pandas", "numpy") and threading.get_ident() == importer:
                raise ImportError(f"the store does not use {name}")
            return real(name, package)

        setattr(importlib, "import_module", without_dataframes)  # noqa: B010
        try:
            import sqlite_utils
        finally:
            setattr(importlib, "import_module", real)  # noqa: B010
        return sqlite_utils


if TYPE_CHECKING:
    import sqlite_utils

Migration = Callable[["sqlite_utils.Database"], None]


def _m001_initial(db: sqlite_utils.Database) -> None:
    db.table("jobs").create(
        {
            "id": str,
            "kind": str,
            "status": str,
            "request": str,
            "result": str,
            "error": str,
            "progress": float,
            "message": str,
            "attempt": int,
            "worker_pid": int,
            "worker_started": float,
            "heartbeat_at": str,
            "created_at": str,
            "started_at": str,
            "finished_at": str,
            "cancel_requested": int,
        },
        pk="id",
    )
    db.table("jobs").create_index(["status"])
    db.table("stages").create(
        {
            "job_id": str,
            "name": str,
            "seq": int,
            "status": str,
            "attempt": int,
            "result": str,
            "error": str,
            "started_at": str,
            "finished_at": str,
        },
        pk=("job_id", "name"),
        foreign_keys=[("job_id", "jobs", "id")],
    )
    db.table("events").create(
        {
            "id": int,
            "job_id": str,
            "at": str,
            "level": str,
            "stage": str,
            "message": str,
            "progress": float,
        },
        pk="id",
    )
    db.table("events").create_index(["job_id", "id"])
    db.table("artifacts").create(
        {
            "id": str,
            "job_id": str,
            "model_id": str,
            "kind": str,
            "path": str,
            "media_type": str,
            "bytes": int,
            "sha256": str,
            "created_at": str,
        },
        pk="id",
    )
    db.table("artifacts").create_index(["job_id"])
    db.table("artifacts").create_index(["model_id"])
    db.table("models").create(
        {
            "id": str,
            "job_id": str,
            "task": str,
            "target": str,
            "metric": str,
            "score": float,
            "path": str,
            "features": str,
            "classes": str,
            "summary": str,
            "created_at": str,
        },
        pk="id",
    )
    db.table("datasets").create(
        {
            "id": str,
            "ref": str,
            "source": str,
            "local_dir": str,
            "files": str,
            "checksum": str,
            "meta": str,
            "created_at": str,
        },
        pk="id",
    )
    db.table("datasets").create_index(["ref"])


def _m002_model_file_hash(db: sqlite_utils.Database) -> None:
    # The sha256 of each model file, recorded at save time and verified before every load.
    db.table("models").add_column("file_sha256", str)


def _m003_worker_start_epoch(db: sqlite_utils.Database) -> None:
    """Worker start times were clock ticks since boot, read from /proc (so only Linux ever
    recorded one); they are now seconds since the epoch, from psutil, on every OS. Convert
    them, so that a worker still running across the upgrade is recognised, not started twice."""
    if not hasattr(os, "sysconf"):
        return
    import psutil

    db.execute(
        "UPDATE jobs SET worker_started = ? + worker_started / ? WHERE worker_started IS NOT NULL",
        [psutil.boot_time(), os.sysconf("SC_CLK_TCK")],
    )


# How the sandbox recorded a call as an event of a 'sandbox' job before runs had a table.
LEGACY_RUN = re.compile(r"run_code (\w+) in ([0-9.]+)s \(exit (-?\d+|None)\)(?:: (.*))?", re.S)
RUN_STATES = ("ok", "error", "timeout", "killed")


def _m004_sandbox_runs(db: sqlite_utils.Database) -> None:
    """Sandbox runs get their own table; the 'sandbox' jobs that stood for them move into it.

    Each old job (a session, or one session-less call) held one summary event per call,
    followed by its stdout and stderr events: each summary becomes a run.
    """
    runs = db.table("sandbox_runs")
    runs.create(
        {
            "id": str,
            "session": str,
            "job_id": str,
            "backend": str,
            "status": str,
            "started_at": str,
            "finished_at": str,
            "duration_s": float,
            "exit_code": int,
            "reason": str,
            "stdout_tail": str,
            "stderr_tail": str,
            "workspace": str,
            "owner_pid": int,
            "owner_started": float,
        },
        pk="id",
    )
    runs.create_index(["started_at"])
    runs.create_index(["status"])
    legacy = db.execute("SELECT id, request FROM jobs WHERE kind = 'sandbox'").fetchall()
    for job_id, request in legacy:
        for run in _legacy_runs(db, job_id, json.loads(request or "{}")):
            columns, marks = ", ".join(run), ", ".join("?" for _ in run)
            db.execute(f"INSERT INTO sandbox_runs ({columns}) VALUES ({marks})", list(run.values()))
        for table in ("events", "stages", "artifacts"):
            db.execute(f"DELETE FROM {table} WHERE job_id = ?", [job_id])
        db.execute("DELETE FROM jobs WHERE id = ?", [job_id])


def _legacy_runs(db: sqlite_utils.Database, job_id: str, request: dict[str, Any]) -> list[dict]:
    runs: list[dict[str, Any]] = []
    events = db.execute(
        "SELECT at, stage, message FROM events WHERE job_id = ? ORDER BY id", [job_id]
    ).fetchall()
    for at, stage, message in events:
        match = LEGACY_RUN.fullmatch(message or "") if stage == "sandbox" else None
        if match is not None:
            status, duration, exit_code, reason = match.groups()
            finished = datetime.fromisoformat(at)
            runs.append(
                {
                    "id": f"run_{uuid.uuid4().hex[:12]}",
                    "session": request.get("session"),
                    "backend": request.get("backend") or "unknown",
                    "status": status if status in RUN_STATES else "error",
                    "started_at": (finished - timedelta(seconds=float(duration))).isoformat(),
                    "finished_at": at,
                    "duration_s": float(duration),
                    "exit_code": None if exit_code == "None" else int(exit_code),
                    "reason": reason,
                    "stdout_tail": "",
                    "stderr_tail": "",
                    "workspace": request.get("workspace"),
                }
            )
        elif runs and stage in ("stdout", "stderr"):
            runs[-1][f"{stage}_tail"] = (message or "")[-RUN_TAIL_CHARS:]
    return runs


def _m005_remote_jobs(db: sqlite_utils.Database) -> None:
    """Jobs that run elsewhere (Modal, a Kaggle kernel): where, under which remote id, with
    what resources, at what estimated and actual cost, after which pre-flight checks. Jobs
    recorded before ran on this machine."""
    jobs = db.table("jobs")
    jobs.add_column("runtime", str, not_null_default="local")
    for name, kind in (
        ("remote_id", str),
        ("remote_url", str),
        ("remote_state", str),
        ("resources", str),
        ("estimated_cost_usd", float),
        ("cost_usd", float),
        ("preflight", str),
    ):
        jobs.add_column(name, kind)
    jobs.create_index(["runtime", "status"])


MIGRATIONS: list[tuple[str, Migration]] = [
    ("001_initial", _m001_initial),
    ("002_model_file_hash", _m002_model_file_hash),
    ("003_worker_start_epoch", _m003_worker_start_epoch),
    ("004_sandbox_runs", _m004_sandbox_runs),
    ("005_remote_jobs", _m005_remote_jobs),
]


def connect(path: Path) -> sqlite_utils.Database:
    """Open the database in WAL mode with a busy timeout, and bring its schema up to date."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    db = _import_sqlite_utils().Database(conn)
    migrate(db)
    return db


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations in order; return the names applied."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    applied = []
    for name, migration in MIGRATIONS:
        conn = db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute("SELECT 1 FROM _migrations WHERE name = ?", [name]).fetchone()
            if not done:
                migration(db)
                conn.execute(
                    "INSERT INTO _migrations VALUES (?, datetime('now'))",
                    [name],
                )
                applied.append(name)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied

"""Runs are not jobs: the runs table, and the migration that moves old 'sandbox' jobs into it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from mltrainer.state.db import MIGRATIONS
from mltrainer.state.models import EventRecord, JobRecord, RunRecord, utcnow
from mltrainer.state.store import Store


def _json_row(record: JobRecord | EventRecord) -> dict[str, Any]:
    """A row as the store of version 0.1.0 wrote it."""
    row = record.model_dump(mode="json")
    for key in ("request", "result"):
        if key in row and row[key] is not None:
            row[key] = json.dumps(row[key])
    if "cancel_requested" in row:
        row["cancel_requested"] = int(row["cancel_requested"])
    return row


def legacy_database(path: Path) -> None:
    """A database at schema 001 holding what the sandbox wrote before runs had a table."""
    db = sqlite_utils.Database(path)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    name, initial = MIGRATIONS[0]
    initial(db)
    db.execute("INSERT INTO _migrations VALUES (?, datetime('now'))", [name])
    at = utcnow()
    session = JobRecord(
        id="job_session",
        kind="sandbox",
        status="succeeded",
        request={"session": "nb", "backend": "bwrap", "workspace": "/w/nb"},
        result={"open": False, "ended": "closed"},
    )
    once = JobRecord(
        id="job_once",
        kind="sandbox",
        status="succeeded",
        request={"session": None, "backend": "docker", "workspace": "/w/run_1"},
        result={"open": False},
    )
    train = JobRecord(id="job_train", kind="train", status="succeeded", request={"target": "y"})
    columns = db["jobs"].columns_dict  # schema 001's: later fields of JobRecord are left out
    db.table("jobs").insert_all(
        [
            {k: v for k, v in _json_row(job).items() if k in columns}
            for job in (session, once, train)
        ]
    )
    events = [
        ("job_session", "sandbox", "run_code ok in 0.120s (exit 0)"),
        ("job_session", "stdout", "hello\n"),
        ("job_session", "sandbox", "run_code timeout in 1.500s (exit None): Timed out after 1 s."),
        ("job_session", "stderr", "x" * 5000 + "the end\n"),
        ("job_session", "sandbox", "session closed"),
        ("job_once", "sandbox", "run_code error in 0.050s (exit 1)"),
        ("job_once", "stderr", "ZeroDivisionError: division by zero\n"),
        ("job_train", "train", "training started"),
    ]
    rows = []
    for seq, (job_id, stage, message) in enumerate(events):
        event = EventRecord(
            job_id=job_id, stage=stage, message=message, at=at + timedelta(seconds=seq)
        )
        rows.append({k: v for k, v in _json_row(event).items() if k != "id"})
    db.table("events").insert_all(rows)
    db.close()


def test_old_sandbox_jobs_become_runs_and_leave_the_jobs_table(tmp_path: Path) -> None:
    path = tmp_path / "mltrainer.db"
    legacy_database(path)
    store = Store(path)
    try:
        assert [job.id for job in store.list_jobs()] == ["job_train"]
        assert [event.message for event in store.events("job_train")] == ["training started"]
        assert store.events("job_session") == [] and store.events("job_once") == []
        runs = sorted(store.runs(), key=lambda run: run.started_at)
        assert [(r.session, r.status, r.exit_code) for r in runs] == [
            ("nb", "ok", 0),
            ("nb", "timeout", None),
            (None, "error", 1),
        ]
        first, second, third = runs
        assert first.stdout_tail == "hello\n" and first.duration_s == 0.12
        assert first.backend == "bwrap" and first.workspace == "/w/nb"
        assert second.reason == "Timed out after 1 s." and second.stderr_tail.endswith("the end\n")
        assert len(second.stderr_tail) == 4000
        assert third.backend == "docker" and "ZeroDivisionError" in third.stderr_tail
        assert all(run.finished_at is not None and run.job_id is None for run in runs)
        assert first.finished_at - first.started_at == timedelta(seconds=0.12)  # type: ignore[operator]
    finally:
        store.close()


def test_a_database_without_sandbox_jobs_migrates_and_records_runs(tmp_path: Path) -> None:
    store = Store(tmp_path / "fresh.db")
    try:
        run = RunRecord(id="run_1", backend="bwrap", session="s", owner_pid=1)
        store.save_run(run)
        done = store.save_run(run.model_copy(update={"status": "ok", "stdout_tail": "42\n"}))
        assert store.get_run("run_1") == done
        assert store.runs(status="running") == [] and store.runs(status="ok") == [done]
    finally:
        store.close()


def test_pruning_keeps_the_newest_finished_runs_and_every_running_one(tmp_path: Path) -> None:
    store = Store(tmp_path / "prune.db")
    start = utcnow()
    try:
        for index in range(6):
            status = "running" if index == 0 else "ok"
            at = start + timedelta(seconds=index)
            store.save_run(
                RunRecord(id=f"run_{index}", backend="bwrap", status=status, started_at=at)
            )
        assert store.prune_runs(keep=3) == 2
        assert sorted(run.id for run in store.runs()) == ["run_0", "run_3", "run_4", "run_5"]
    finally:
        store.close()

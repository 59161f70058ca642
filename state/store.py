"""The store: every read and write of the SQLite database goes through here.

Text written to any row passes through the masker first, so a secret that reaches a log
line, an error or a result never reaches the disk.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from mltrainer.state.db import connect
from mltrainer.state.errors import NotFound
from mltrainer.state.masking import Masker
from mltrainer.state.models import (
    TERMINAL,
    ArtifactRecord,
    DatasetRecord,
    EventLevel,
    EventRecord,
    JobRecord,
    JobStatus,
    ModelRecord,
    RunRecord,
    RunState,
    StageRecord,
    utcnow,
)

if TYPE_CHECKING:
    import sqlite_utils

RowT = TypeVar("RowT", bound=BaseModel)
JSON_FIELDS = {
    "request", "result", "features", "classes", "summary", "files", "meta", "resources", "preflight",
}  # fmt: skip


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


class Store:
    def __init__(self, path: Path, masker: Masker | None = None) -> None:
        self.path = path
        self.masker = masker or Masker()
        self._db: sqlite_utils.Database | None = None
        self._closed = False
        self._lock = threading.RLock()

    @property
    def db(self) -> sqlite_utils.Database:
        """The database, opened and migrated on first use (the server answers its client's
        handshake while a background thread opens it)."""
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("The store is closed.")
            if self._db is None:
                self._db = connect(self.path)
            return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
            self._closed = True

    # -- conversion ---------------------------------------------------------------------
    def _to_row(self, record: BaseModel) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for key, value in record.model_dump(mode="json").items():
            if key in JSON_FIELDS and value is not None:
                value = json.dumps(self.masker.mask_obj(value))
            elif isinstance(value, str):
                value = self.masker.mask(value)
            elif isinstance(value, bool):
                value = int(value)
            row[key] = value
        return row

    @staticmethod
    def _from_row(model: type[RowT], row: dict[str, Any]) -> RowT:
        data = {
            k: (json.loads(v) if k in JSON_FIELDS and v is not None else v) for k, v in row.items()
        }
        return model.model_validate(data)

    def _update(self, table: str, pk: Any, fields: dict[str, Any]) -> None:
        masked: dict[str, Any] = {}
        for key, value in fields.items():
            if key in JSON_FIELDS and value is not None:
                value = json.dumps(self.masker.mask_obj(value))
            elif isinstance(value, str):
                value = self.masker.mask(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, bool):
                value = int(value)
            masked[key] = value
        with self._lock:
            self.db.table(table).update(pk, masked)

    # -- jobs ---------------------------------------------------------------------------
    def create_job(
        self, kind: str, request: dict[str, Any], *, job_id: str | None = None, **fields: Any
    ) -> JobRecord:
        """Record a new job (queued unless ``fields`` say otherwise); ``job_id`` when the
        caller needed the id before (a remote job's run folder is named by it)."""
        job = JobRecord(id=job_id or new_id("job"), kind=kind, request=request, **fields)
        with self._lock:
            self.db.table("jobs").insert(self._to_row(job))
        return job

    def get_job(self, job_id: str) -> JobRecord:
        with self._lock:
            rows = list(self.db.table("jobs").rows_where("id = ?", [job_id]))
        if not rows:
            raise NotFound(
                f"No job with id '{job_id}'.", next_step="Call list_jobs to see the known jobs."
            )
        return self._from_row(JobRecord, rows[0])

    def list_jobs(
        self, status: JobStatus | None = None, limit: int = 50, *, kind: str | None = None
    ) -> list[JobRecord]:
        """Jobs, newest first, optionally only those in ``status`` or of ``kind``."""
        filters = {"status": status, "kind": kind}
        wanted = {column: value for column, value in filters.items() if value is not None}
        where = " and ".join(f"{column} = ?" for column in wanted) or None
        with self._lock:
            rows = self.db.table("jobs").rows_where(
                where, list(wanted.values()), order_by="created_at desc", limit=limit
            )
            return [self._from_row(JobRecord, row) for row in rows]

    def update_job(self, job_id: str, **fields: Any) -> JobRecord:
        self.get_job(job_id)
        self._update("jobs", job_id, fields)
        return self.get_job(job_id)

    def finish_job(
        self,
        job_id: str,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> JobRecord:
        """Move a job to a terminal state, once: a job already finished is left as it is."""
        with self._lock:
            job = self.get_job(job_id)
            if job.status in TERMINAL:
                return job
            fields: dict[str, Any] = {"status": status, "finished_at": utcnow(), "error": error}
            if result is not None:
                fields["result"] = result
            if status == "succeeded":
                fields["progress"] = 1.0
            self._update("jobs", job_id, fields)
        return self.get_job(job_id)

    def claim_job(self, job_id: str, attempt: int) -> bool:
        """Take the right to start attempt ``attempt + 1`` of a job; False if another took it.

        A compare-and-set on the attempt counter, so two servers sharing one database
        never start the same job twice.
        """
        now = utcnow().isoformat()
        with self._lock:
            cursor = self.db.execute(
                "UPDATE jobs SET attempt = attempt + 1, status = 'running', worker_pid = NULL, "
                "worker_started = NULL, started_at = coalesce(started_at, ?) "
                "WHERE id = ? AND attempt = ? AND status IN ('queued', 'running')",
                [now, job_id, attempt],
            )
            return cursor.rowcount == 1

    def jobs_in(self, *statuses: JobStatus) -> list[JobRecord]:
        marks = ",".join("?" for _ in statuses)
        with self._lock:
            rows = self.db.table("jobs").rows_where(f"status in ({marks})", list(statuses))
            return [self._from_row(JobRecord, row) for row in rows]

    # -- stages -------------------------------------------------------------------------
    def start_stage(self, job_id: str, name: str, seq: int, attempt: int) -> None:
        stage = StageRecord(job_id=job_id, name=name, seq=seq, status="running", attempt=attempt)
        with self._lock:
            self.db.table("stages").upsert(self._to_row(stage), pk=("job_id", "name"))

    def finish_stage(
        self,
        job_id: str,
        name: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        fields = {"status": status, "result": result, "error": error, "finished_at": utcnow()}
        self._update("stages", (job_id, name), fields)

    def stages(self, job_id: str) -> list[StageRecord]:
        with self._lock:
            rows = self.db.table("stages").rows_where("job_id = ?", [job_id], order_by="seq")
            return [self._from_row(StageRecord, row) for row in rows]

    # -- events -------------------------------------------------------------------------
    def add_event(
        self,
        job_id: str,
        message: str,
        *,
        level: EventLevel = "info",
        stage: str | None = None,
        progress: float | None = None,
    ) -> None:
        event = EventRecord(
            job_id=job_id, message=message, level=level, stage=stage, progress=progress
        )
        row = self._to_row(event)
        row.pop("id")
        with self._lock:
            self.db.table("events").insert(row)

    def events(self, job_id: str, after_id: int = 0, limit: int = 1000) -> list[EventRecord]:
        with self._lock:
            rows = self.db.table("events").rows_where(
                "job_id = ? and id > ?", [job_id, after_id], order_by="id", limit=limit
            )
            return [self._from_row(EventRecord, row) for row in rows]

    # -- artifacts and models -----------------------------------------------------------
    def add_artifact(self, artifact: ArtifactRecord) -> ArtifactRecord:
        with self._lock:
            self.db.table("artifacts").upsert(self._to_row(artifact), pk="id")
        return artifact

    def artifacts(
        self, *, job_id: str | None = None, model_id: str | None = None
    ) -> list[ArtifactRecord]:
        where, args = ("job_id = ?", [job_id]) if job_id else ("model_id = ?", [model_id])
        with self._lock:
            rows = self.db.table("artifacts").rows_where(where, args, order_by="created_at")
            return [self._from_row(ArtifactRecord, row) for row in rows]

    def save_model(self, model: ModelRecord) -> ModelRecord:
        with self._lock:
            self.db.table("models").upsert(self._to_row(model), pk="id")
        return model

    def get_model(self, model_id: str) -> ModelRecord:
        with self._lock:
            rows = list(self.db.table("models").rows_where("id = ?", [model_id]))
        if not rows:
            raise NotFound(
                f"No model with id '{model_id}'.",
                next_step="Use the model_id returned by train_model or job_status.",
            )
        return self._from_row(ModelRecord, rows[0])

    def record_model_file_sha256(self, model_id: str, sha256: str) -> ModelRecord:
        """Record the hash of a model's file when none is recorded yet (a model saved before
        hashes were), never replacing one; the record with the hash now in force."""
        self.get_model(model_id)
        with self._lock:
            self.db.execute(
                "UPDATE models SET file_sha256 = ? WHERE id = ? AND file_sha256 IS NULL",
                [sha256, model_id],
            )
        return self.get_model(model_id)

    def list_models(self, limit: int = 50) -> list[ModelRecord]:
        with self._lock:
            rows = self.db.table("models").rows_where(order_by="created_at desc", limit=limit)
            return [self._from_row(ModelRecord, row) for row in rows]

    # -- datasets -----------------------------------------------------------------------
    def upsert_dataset(self, dataset: DatasetRecord) -> DatasetRecord:
        with self._lock:
            self.db.table("datasets").upsert(self._to_row(dataset), pk="id")
        return dataset

    def find_dataset(self, ref: str) -> DatasetRecord | None:
        with self._lock:
            rows = list(
                self.db.table("datasets").rows_where("ref = ?", [ref], order_by="created_at desc")
            )
        return self._from_row(DatasetRecord, rows[0]) if rows else None

    def get_dataset(self, dataset_id: str) -> DatasetRecord:
        with self._lock:
            rows = list(self.db.table("datasets").rows_where("id = ?", [dataset_id]))
        if not rows:
            raise NotFound(
                f"No dataset with id '{dataset_id}'.",
                next_step="Call download_dataset first and use the dataset_id it returns.",
            )
        return self._from_row(DatasetRecord, rows[0])

    # -- sandbox runs -------------------------------------------------------------------
    # Runs are not jobs: every run_code call is a row here; a long one also has a 'code' job.
    def save_run(self, run: RunRecord) -> RunRecord:
        with self._lock:
            self.db.table("sandbox_runs").upsert(self._to_row(run), pk="id")
        return run

    def get_run(self, run_id: str) -> RunRecord:
        with self._lock:
            rows = list(self.db.table("sandbox_runs").rows_where("id = ?", [run_id]))
        if not rows:
            raise NotFound(
                f"No sandbox run with id '{run_id}'.",
                next_step="Call sandbox_info to see the latest runs.",
            )
        return self._from_row(RunRecord, rows[0])

    def run_of_job(self, job_id: str) -> RunRecord | None:
        """The run a 'code' job stands for, once it has one."""
        with self._lock:
            rows = list(self.db.table("sandbox_runs").rows_where("job_id = ?", [job_id], limit=1))
        return self._from_row(RunRecord, rows[0]) if rows else None

    def runs(self, *, status: RunState | None = None, limit: int = 20) -> list[RunRecord]:
        """Runs, newest first, optionally only those in one state."""
        where, args = ("status = ?", [status]) if status else (None, [])
        with self._lock:
            rows = self.db.table("sandbox_runs").rows_where(
                where, args, order_by="started_at desc", limit=limit
            )
            return [self._from_row(RunRecord, row) for row in rows]

    def prune_runs(self, keep: int) -> int:
        """Delete finished runs beyond the newest ``keep``; return how many went."""
        with self._lock:
            cursor = self.db.execute(
                "DELETE FROM sandbox_runs WHERE status != 'running' AND id NOT IN "
                "(SELECT id FROM sandbox_runs ORDER BY started_at DESC LIMIT ?)",
                [keep],
            )
            return cursor.rowcount

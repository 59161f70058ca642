"""The bottom layer on its own: the store's rows round-trip, every earlier schema version
migrates, a failed migration leaves nothing behind, and no secret reaches the database."""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from mltrainer.state import db as db_module
from mltrainer.state.errors import NotFound
from mltrainer.state.masking import Masker
from mltrainer.state.models import ArtifactRecord, DatasetRecord, ModelRecord
from mltrainer.state.store import Store

SECRET = "s3cr3t-Value-4242"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store(tmp_path / "state.db")
    yield opened
    opened.close()


def test_job_rows_round_trip_and_finish_once(store: Store) -> None:
    job = store.create_job("train", {"dataset": "a.csv", "models": ["xgboost"]})
    assert store.get_job(job.id).request == {"dataset": "a.csv", "models": ["xgboost"]}
    assert store.claim_job(job.id, 0)
    assert not store.claim_job(job.id, 0), "a second claim of the same attempt must lose"
    running = store.update_job(job.id, progress=0.5, message="half", worker_pid=123)
    assert (running.status, running.attempt, running.progress) == ("running", 1, 0.5)
    assert running.started_at is not None and running.worker_pid == 123
    done = store.finish_job(job.id, "succeeded", result={"model_id": "model_x", "score": 0.9})
    assert done.status == "succeeded" and done.progress == 1.0 and done.finished_at
    again = store.finish_job(job.id, "failed", error="too late")
    assert again.status == "succeeded" and again.error is None, "a job ends only once"
    assert store.get_job(job.id).result == {"model_id": "model_x", "score": 0.9}


def test_jobs_are_listed_newest_first_by_status_and_kind(store: Store) -> None:
    train = store.create_job("train", {})
    code = store.create_job("code", {})
    store.finish_job(code.id, "succeeded")
    assert [j.id for j in store.list_jobs()] == [code.id, train.id]
    assert [j.id for j in store.list_jobs("queued")] == [train.id]
    assert [j.id for j in store.list_jobs(kind="code")] == [code.id]
    assert store.list_jobs("queued", kind="code") == []
    assert [j.id for j in store.list_jobs(limit=1)] == [code.id]
    assert [j.id for j in store.jobs_in("queued", "succeeded")] == [train.id, code.id]


def test_stages_events_artifacts_models_and_datasets_round_trip(store: Store) -> None:
    job = store.create_job("train", {})
    store.start_stage(job.id, "load", 1, 1)
    store.finish_stage(job.id, "load", "succeeded", result={"rows": 10})
    store.start_stage(job.id, "train", 2, 1)
    assert [(s.name, s.status, s.result) for s in store.stages(job.id)] == [
        ("load", "succeeded", {"rows": 10}),
        ("train", "running", None),
    ]
    for n in range(3):
        store.add_event(job.id, f"event {n}", level="warning", stage="load", progress=n / 10)
    events = store.events(job.id)
    assert [e.message for e in events] == ["event 0", "event 1", "event 2"]
    assert [e.message for e in store.events(job.id, after_id=events[0].id or 0)] == [
        "event 1",
        "event 2",
    ]
    model = store.save_model(
        ModelRecord(
            id="model_a", job_id=job.id, task="binary", target="y", metric="roc_auc", score=0.8,
            path="/m", features=["a", "b"], classes=["no", "yes"], summary={"name": "linear"},
        )
    )  # fmt: skip
    assert store.get_model("model_a") == model
    assert [m.id for m in store.list_models()] == ["model_a"]
    artifact = ArtifactRecord(id="art_1", job_id=job.id, model_id="model_a", kind="plot", path="/p")
    store.add_artifact(artifact)
    assert store.artifacts(model_id="model_a") == store.artifacts(job_id=job.id) == [artifact]
    dataset = DatasetRecord(
        id="ds_1", ref="hf:o/n", source="hf", local_dir="/d", files=[{"path": "a.csv"}]
    )
    store.upsert_dataset(dataset)
    assert store.get_dataset("ds_1") == dataset == store.find_dataset("hf:o/n")
    assert store.find_dataset("hf:o/other") is None


@pytest.mark.parametrize(
    ("read", "words"),
    [
        (lambda s: s.get_job("job_nope"), "list_jobs"),
        (lambda s: s.get_model("model_nope"), "train_model"),
        (lambda s: s.get_dataset("ds_nope"), "download_dataset"),
        (lambda s: s.update_job("job_nope", progress=1.0), "list_jobs"),
    ],
)
def test_unknown_ids_are_not_found_with_a_next_step(store: Store, read, words: str) -> None:
    with pytest.raises(NotFound, match=words):
        read(store)


# -- migrations ------------------------------------------------------------------------------

TICKS = 123_456.0  # a worker start time as versions before 003 recorded it: ticks since boot


def build_at_version(path: Path, version: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database as a server that knew only the first ``version`` migrations left it, with a
    running job in it."""
    with monkeypatch.context() as patch:
        patch.setattr(db_module, "MIGRATIONS", db_module.MIGRATIONS[:version])
        db_module.connect(path).close()
    if version == 0:
        return
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO jobs (id, kind, status, request, progress, message, attempt, worker_pid, "
        "worker_started, created_at, cancel_requested) "
        "VALUES ('job_old', 'train', 'running', '{}', 0.5, 'half', 1, 4242, ?, "
        "'2025-01-01T00:00:00+00:00', 0)",
        [TICKS],
    )
    conn.commit()
    conn.close()


@pytest.mark.parametrize("version", range(len(db_module.MIGRATIONS)))
def test_every_earlier_schema_version_migrates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: int
) -> None:
    path = tmp_path / f"v{version}.db"
    build_at_version(path, version, monkeypatch)
    store = Store(path)  # brings it up to date
    try:
        applied = [row[0] for row in store.db.execute("SELECT name FROM _migrations ORDER BY 1")]
        assert applied == sorted(name for name, _ in db_module.MIGRATIONS)
        if version == 0:
            return
        job = store.get_job("job_old")  # rows of the old version read back as typed records
        assert (job.status, job.attempt, job.worker_pid) == ("running", 1, 4242)
        names = [name for name, _ in db_module.MIGRATIONS[:version]]
        if "003_worker_start_epoch" not in names and hasattr(os, "sysconf"):
            expected = psutil.boot_time() + TICKS / os.sysconf("SC_CLK_TCK")
            assert job.worker_started == pytest.approx(expected, abs=0.001)
        store.create_job("train", {})  # and the migrated schema takes new rows
    finally:
        store.close()


def test_a_failed_migration_leaves_no_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.db"
    db_module.connect(path).close()

    def broken(db) -> None:
        db.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("disk on fire")

    with monkeypatch.context() as patch:
        patch.setattr(db_module, "MIGRATIONS", [*db_module.MIGRATIONS, ("999_broken", broken)])
        with pytest.raises(RuntimeError, match="disk on fire"):
            db_module.connect(path)
    conn = sqlite3.connect(path)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    names = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    conn.close()
    assert "half_done" not in tables and "999_broken" not in names
    Store(path).close()  # still opens as before


# -- masking on write ------------------------------------------------------------------------


def test_no_secret_reaches_the_database_in_any_form(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store(path, Masker({"API_KEY": SECRET}))
    b64 = base64.b64encode(SECRET.encode()).decode()
    job = store.create_job("train", {"dataset": f"https://x/?token={SECRET}", "n": [SECRET]})
    store.update_job(job.id, message=f"using {SECRET}")
    store.add_event(job.id, f"printed {b64} in a log line")
    store.start_stage(job.id, "load", 1, 1)
    store.finish_stage(job.id, "load", "failed", result={"k": SECRET}, error=f"bad {SECRET}")
    store.finish_job(job.id, "failed", error=f"failed with {SECRET}", result={"deep": [SECRET]})
    store.save_model(
        ModelRecord(
            id="model_s", job_id=job.id, task="binary", target=SECRET, metric="f1", score=None,
            path="/m", summary={"note": SECRET},
        )
    )  # fmt: skip
    store.upsert_dataset(
        DatasetRecord(
            id="ds_s", ref=f"hf:{SECRET}", source="hf", local_dir="/d", meta={"t": SECRET}
        )
    )
    store.close()
    dump = "\n".join(sqlite3.connect(path).iterdump())
    assert SECRET not in dump and b64 not in dump
    assert dump.count("***API_KEY***") >= 10


# The store is opened in a background thread while tool calls run: its import of sqlite-utils
# (without pandas and numpy) must not make another thread's import of those fail. The loader of
# sqlite_utils.db holds its execution (not its finding: finders run under the global import
# lock, which would block the other thread too) until another thread has imported numpy.
OVERLAPPING_IMPORTS = """
import importlib, importlib.machinery, pathlib, sys, threading
importing, imported = threading.Event(), threading.Event()
overlapped = []

class HeldLoader:
    def __init__(self, real):
        self.real = real
    def create_module(self, spec):
        return self.real.create_module(spec)
    def exec_module(self, module):
        importing.set()
        overlapped.append(imported.wait(60))
        self.real.exec_module(module)

class Hold:
    def find_spec(self, name, path=None, target=None):
        if name != "sqlite_utils.db":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        spec.loader = HeldLoader(spec.loader)
        return spec

sys.meta_path.insert(0, Hold())
errors = []

def other_thread():
    importing.wait(60)
    try:
        importlib.import_module("numpy")
    except ImportError as exc:
        errors.append(repr(exc))
    imported.set()

thread = threading.Thread(target=other_thread)
thread.start()
from mltrainer.state.store import Store
Store(pathlib.Path(sys.argv[1])).create_job("train", {})
thread.join()
import sqlite_utils.db
assert overlapped == [True], "the other thread's import did not run while sqlite_utils was held"
assert not errors, errors
assert sqlite_utils.db.np is None and sqlite_utils.db.pd is None
print("ok")
"""


@pytest.mark.slow
def test_opening_the_store_does_not_break_imports_in_other_threads(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-P", "-c", OVERLAPPING_IMPORTS, str(tmp_path / "state.db")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stdout.strip() == "ok", done.stderr

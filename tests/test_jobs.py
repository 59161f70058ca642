"""Durable jobs: a killed worker is resumed or failed cleanly; cancel really stops the work;
the server answers while a job runs; recovery never starts a second worker for a live one;
a worker started from a directory full of look-alike packages still imports our modules."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import anyio
import pytest
from conftest import connect, payload, write_classification_csv
from mcp import Client, StdioServerParameters

from mltrainer.sandbox.models import RunResult
from mltrainer.server.context import build_context
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.jobs import procs
from mltrainer.tools.training.request import TrainRequest

TERMINAL = ("succeeded", "failed", "cancelled")


def wait_until(predicate, timeout: float = 120.0, every: float = 0.05):
    """Wait for a condition (generously: the machine is shared), not for a time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


@pytest.fixture
def big_csv(tmp_path: Path) -> Path:
    return write_classification_csv(tmp_path / "big.csv", rows=60_000)


def submit(settings: Settings, dataset: Path, budget: int = 8):
    app = build_context(settings)
    request = TrainRequest(dataset=str(dataset), target="label", time_budget_s=budget)
    return app, app.jobs.submit(request)


def kill_worker_after_load(app, job_id: str) -> int:
    wait_until(
        lambda: any(s.name == "load" and s.status == "succeeded" for s in app.store.stages(job_id))
    )
    pid = app.store.get_job(job_id).worker_pid
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not procs.alive(pid, None))
    return pid


def ended(store: Store, job_id: str):
    return (job := store.get_job(job_id)).status in TERMINAL and job


def test_killed_worker_resumes_from_last_stage_after_restart(
    settings: Settings, big_csv: Path
) -> None:
    app, job = submit(settings, big_csv)
    app.stopping.set()  # the first server "dies": no supervision from here on
    kill_worker_after_load(app, job.id)
    assert app.store.get_job(job.id).status == "running"  # as a crash leaves it

    restarted = build_context(settings)  # recovery runs at start-up
    try:
        final = wait_until(lambda: ended(restarted.store, job.id), timeout=300)
        assert final.status == "succeeded", final.error
        assert final.attempt == 2
        messages = [e.message for e in restarted.store.events(job.id)]
        assert any("stopped without finishing" in m for m in messages)
        assert any("Stage 'load' was finished by attempt 1" in m for m in messages)
        assert (final.result or {}).get("model_id")
    finally:
        restarted.close()
        app.close()


def test_worker_dying_too_often_fails_the_job_with_the_reason(home: Path, big_csv: Path) -> None:
    settings = Settings(home=home, job_max_attempts=1)
    app, job = submit(settings, big_csv)
    app.stopping.set()
    kill_worker_after_load(app, job.id)
    restarted = build_context(settings)
    try:
        assert restarted.recovered.wait(120)  # the first round of recovery, at start-up
        final = restarted.store.get_job(job.id)
        assert final.status == "failed"
        assert "stopped without finishing 1 times" in (final.error or "")
        assert "mltrainer://jobs/" in (final.error or "")
    finally:
        restarted.close()
        app.close()


def test_supervisor_notices_a_worker_killed_while_the_server_runs(
    settings: Settings, big_csv: Path
) -> None:
    app, job = submit(settings, big_csv)
    try:
        kill_worker_after_load(app, job.id)
        final = wait_until(lambda: ended(app.store, job.id), timeout=300)
        assert final.status == "succeeded" and final.attempt == 2
    finally:
        app.close()


@pytest.mark.anyio
async def test_cancel_stops_the_worker_and_its_children(settings: Settings, big_csv: Path) -> None:
    async with connect("memory", settings) as client:
        job = payload(
            await client.call_tool(
                "train_model",
                {"dataset": str(big_csv), "target": "label", "time_budget_s": 120, "wait_s": 0},
            )
        )
        assert job["status"] in ("queued", "running")

        # The server answers while the job runs: the list comes back with the job unfinished.
        listed = payload(await client.call_tool("list_jobs", {"status": "running"}))
        assert [j["job_id"] for j in listed["jobs"]] == [job["job_id"]]

        store = Store(settings.db_path)  # a second reader, as another process would be
        worker = wait_until(lambda: store.get_job(job["job_id"]).worker_pid)
        store.close()
        cancelled = payload(await client.call_tool("cancel_job", {"job_id": job["job_id"]}))
        assert cancelled["status"] == "cancelled"
        wait_until(lambda: not procs.alive(worker, None))
        with pytest.raises(ProcessLookupError):
            os.killpg(worker, 0)  # nothing of its process group is left

        again = await client.call_tool("cancel_job", {"job_id": job["job_id"]})
        assert again.is_error and "already cancelled" in again.content[0].text


@pytest.mark.anyio
async def test_unknown_job_is_a_clear_error(settings: Settings) -> None:
    async with connect("memory", settings) as client:
        result = await client.call_tool("job_status", {"job_id": "job_doesnotexist"})
        assert result.is_error and "list_jobs" in result.content[0].text


@pytest.mark.anyio
async def test_a_model_is_usable_while_training_runs_and_survives_cancel(
    settings: Settings, churn_csv: Path
) -> None:
    async with connect("memory", settings) as client:
        job = payload(
            await client.call_tool(
                "train_model",
                {"dataset": str(churn_csv), "target": "label", "time_budget_s": 60, "wait_s": 0},
            )
        )
        status = job
        while not status["model_id"] and status["status"] not in TERMINAL:
            status = payload(
                await client.call_tool("job_status", {"job_id": job["job_id"], "wait_s": 1})
            )
        assert status["model_id"], "the job ended without publishing a baseline model"
        assert status["status"] == "running", "the baseline came only at the end"
        assert "already usable" in status["next_step"]
        early = payload(
            await client.call_tool("predict", {"model": job["job_id"], "dataset": str(churn_csv)})
        )
        assert early["n_rows"] == 400

        cancelled = payload(await client.call_tool("cancel_job", {"job_id": job["job_id"]}))
        assert cancelled["status"] == "cancelled" and cancelled["model_id"]
        after = payload(
            await client.call_tool(
                "predict", {"model": cancelled["model_id"], "dataset": str(churn_csv)}
            )
        )
        assert after["n_rows"] == 400


def test_jobs_beyond_the_limit_wait_in_the_queue(home: Path, churn_csv: Path) -> None:
    settings = Settings(home=home, max_concurrent_jobs=1)
    app = build_context(settings)
    try:
        request = TrainRequest(dataset=str(churn_csv), target="label", time_budget_s=5)
        first, second = app.jobs.submit(request), app.jobs.submit(request)
        assert first.status == "running"
        assert second.status == "queued" and "MLTRAINER_MAX_CONCURRENT_JOBS" in second.message
        done = wait_until(lambda: ended(app.store, second.id), timeout=300)
        assert done.status == "succeeded", done.error
        assert app.store.get_job(first.id).finished_at <= done.started_at
    finally:
        app.close()


# -- process control: the same logic on every OS (psutil) ------------------------------------

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def sleeper(tmp_path: Path):
    return procs.spawn(
        SLEEPER[1:], log_path=tmp_path / "sleeper.log", env=dict(os.environ), cwd=tmp_path
    )


def test_a_reused_pid_is_told_apart_by_its_creation_time(tmp_path: Path) -> None:
    proc = sleeper(tmp_path)
    try:
        started = procs.start_time(proc.pid)
        assert started is not None and procs.alive(proc.pid, started)
        # The same pid with another creation time is another process (the pid was reused).
        assert not procs.alive(proc.pid, started - 1.0)
        procs.stop_tree(proc.pid, started - 1.0, grace_s=1)  # not ours: left alone
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
    assert not procs.alive(proc.pid, started)


# A worker-like process: a child, and a grandchild that leaves the tree (its parent exits, so
# it is reparented) but stays in the worker's process group. Their pids go to a file.
FAMILY = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
middle = subprocess.Popen([sys.executable, "-c", '''
import subprocess, sys
grand = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(grand.pid, flush=True)
'''], stdout=subprocess.PIPE, text=True)
grand = int(middle.stdout.readline())
middle.wait()
with open(sys.argv[1] + ".tmp", "w") as out:
    out.write(f"{child.pid} {grand}")
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(600)
"""


def test_stop_tree_stops_the_worker_its_children_and_reparented_grandchildren(
    tmp_path: Path,
) -> None:
    pids_file = tmp_path / "pids"
    proc = procs.spawn(
        ["-c", FAMILY, str(pids_file)],
        log_path=tmp_path / "family.log",
        env=dict(os.environ),
        cwd=tmp_path,
    )
    started = procs.start_time(proc.pid)
    wait_until(pids_file.exists)
    child, grandchild = (int(pid) for pid in pids_file.read_text().split())
    family = {pid: procs.start_time(pid) for pid in (proc.pid, child, grandchild)}
    assert all(family.values())
    procs.stop_tree(proc.pid, started, grace_s=2)
    proc.wait(timeout=60)
    assert not [pid for pid, at in family.items() if procs.alive(pid, at)]


def test_recovery_does_not_start_a_second_worker_while_one_is_alive(
    home: Path, churn_csv: Path, tmp_path: Path
) -> None:
    """A job whose recorded worker still runs (say, the server restarted) is left to it; one
    whose pid now belongs to another process (a reused pid) is recovered."""
    settings = Settings(home=home, job_max_attempts=1)
    settings.ensure_dirs()
    store = Store(settings.db_path)
    request = TrainRequest(dataset=str(churn_csv), target="label").model_dump(mode="json")
    live, reused = store.create_job("train", request), store.create_job("train", request)
    worker = sleeper(tmp_path)
    try:
        started = procs.start_time(worker.pid)
        for job, at in ((live, started), (reused, started - 1.0)):
            assert store.claim_job(job.id, 0)
            store.update_job(job.id, worker_pid=worker.pid, worker_started=at)
        app = build_context(settings)  # recovery runs at start-up
        try:
            assert app.recovered.wait(120)
            still = app.store.get_job(live.id)
            assert (still.status, still.attempt, still.worker_pid) == ("running", 1, worker.pid)
            assert not app.store.events(live.id)  # nothing was resumed or failed
            recovered = app.store.get_job(reused.id)
            assert recovered.status == "failed" and "stopped without finishing" in (
                recovered.error or ""
            )
        finally:
            app.close()
    finally:
        worker.kill()
        worker.wait()
        store.close()


# -- jobs of other kinds: a long run_code is a 'code' job ------------------------------------


def code_result(stdout: str) -> RunResult:
    return RunResult(
        status="ok",
        stdout=stdout,
        stderr="",
        exit_code=0,
        duration_s=61.0,
        session=None,
        backend="process",
        backend_reason="test",
        isolated=False,
        workspace="/tmp/w",
    )


@pytest.mark.anyio
async def test_code_jobs_show_their_typed_result_and_a_fitting_next_step(
    settings: Settings,
) -> None:
    settings.ensure_dirs()
    store = Store(settings.db_path)
    job = store.create_job("code", {"code": "print(42)"})
    store.finish_job(job.id, "succeeded", result=code_result("42\n").model_dump(mode="json"))
    store.close()
    async with connect("memory", settings) as client:
        view = payload(await client.call_tool("job_status", {"job_id": job.id}))
        assert view["kind"] == "code" and view["result"]["stdout"] == "42\n"
        assert view["model_id"] is None and "stdout" in view["next_step"]
        assert "predict" not in view["next_step"]
        codes = payload(await client.call_tool("list_jobs", {"kind": "code"}))
        trains = payload(await client.call_tool("list_jobs", {"kind": "train"}))
    assert [j["job_id"] for j in codes["jobs"]] == [job.id] and trains["count"] == 0


def test_cancelling_a_code_job_calls_its_owners_hook(settings: Settings) -> None:
    app = build_context(settings)
    stopped: list[str] = []
    try:
        app.jobs.on_cancel("code", stopped.append)
        job = app.store.create_job("code", {"code": "import time; time.sleep(600)"})
        app.store.update_job(job.id, status="running")
        assert app.jobs.cancel(job.id).status == "cancelled"
        assert stopped == [job.id]
    finally:
        app.close()


# -- the worker imports our modules, whatever the server's working directory holds -----------


@pytest.mark.anyio
async def test_a_server_started_among_look_alike_packages_trains(
    tmp_path: Path, churn_csv: Path
) -> None:
    """Regression: with MLTRAINER_HOME=./state and a tools/training/ package in the directory
    the server started from, every job failed ("cannot import name 'TERMINAL' from
    'state.models'") because the worker imported those instead of ours."""
    (tmp_path / "state" / "models").mkdir(parents=True)
    for package in ("state", "tools", "tools/training", "mltrainer"):
        folder = tmp_path / package
        folder.mkdir(exist_ok=True)
        (folder / "__init__.py").write_text(f"raise ImportError('the wrong {package}')\n")
    (tmp_path / "state" / "models.py").write_text("raise ImportError('the wrong models')\n")
    console_script = Path(sys.executable).with_name("mltrainer-mcp")
    server = StdioServerParameters(
        command=str(console_script),
        env={**os.environ, "MLTRAINER_HOME": "./state"},
        cwd=str(tmp_path),
    )
    async with Client(server) as client:
        args = {"dataset": str(churn_csv), "target": "label", "time_budget_s": 5, "wait_s": 0}
        job = payload(await client.call_tool("train_model", args))
        with anyio.fail_after(600):
            while job["status"] not in TERMINAL:
                job = payload(
                    await client.call_tool("job_status", {"job_id": job["job_id"], "wait_s": 45})
                )
    assert job["status"] == "succeeded", job["error"]
    assert (tmp_path / "state" / "models" / job["model_id"] / "model.skops").is_file()

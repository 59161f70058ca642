"""Durable jobs: a killed worker is resumed or failed cleanly; cancel really stops the work;
the server answers while a job runs."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from conftest import connect, payload, write_classification_csv

from mltrainer.server.app import build_context
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.jobs import procs
from mltrainer.tools.training.request import TrainRequest


def wait_until(predicate, timeout: float = 60.0, every: float = 0.05):
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
    return app, app.jobs.submit("train", request.model_dump())


def kill_worker_after_load(app, job_id: str) -> int:
    wait_until(
        lambda: any(s.name == "load" and s.status == "succeeded" for s in app.store.stages(job_id))
    )
    pid = app.store.get_job(job_id).worker_pid
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not procs.alive(pid, None), timeout=10)
    return pid


def test_killed_worker_resumes_from_last_stage_after_restart(
    settings: Settings, big_csv: Path
) -> None:
    app, job = submit(settings, big_csv)
    app._stop.set()  # the first server "dies": no supervision from here on
    kill_worker_after_load(app, job.id)
    assert app.store.get_job(job.id).status == "running"  # as a crash leaves it

    restarted = build_context(settings)  # recovery runs at start-up
    try:
        final = wait_until(
            lambda: (j := restarted.store.get_job(job.id)).status in ("succeeded", "failed") and j,
            timeout=180,
        )
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
    app._stop.set()
    kill_worker_after_load(app, job.id)
    restarted = build_context(settings)
    try:
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
        final = wait_until(
            lambda: (j := app.store.get_job(job.id)).status in ("succeeded", "failed") and j,
            timeout=180,
        )
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

        # The server answers at once while the job runs.
        started = time.monotonic()
        listed = payload(await client.call_tool("list_jobs", {"status": "running"}))
        assert time.monotonic() - started < 5
        assert job["job_id"] in [j["job_id"] for j in listed["jobs"]]

        store = Store(settings.db_path)  # a second reader, as another process would be
        app_pid = wait_until(lambda: store.get_job(job["job_id"]).worker_pid, timeout=30)
        store.close()
        assert app_pid
        cancelled = payload(await client.call_tool("cancel_job", {"job_id": job["job_id"]}))
        assert cancelled["status"] == "cancelled"
        wait_until(lambda: not procs.alive(app_pid, None), timeout=10)
        with pytest.raises(ProcessLookupError):
            os.killpg(app_pid, 0)

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
        deadline = time.monotonic() + 45
        status = job
        while not status["model_id"] and time.monotonic() < deadline:
            status = payload(
                await client.call_tool("job_status", {"job_id": job["job_id"], "wait_s": 1})
            )
        assert status["model_id"], "no baseline model was published in time"
        assert status["status"] == "running"
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
        request = TrainRequest(dataset=str(churn_csv), target="label", time_budget_s=5).model_dump()
        first, second = app.jobs.submit("train", request), app.jobs.submit("train", request)
        assert first.status == "running"
        assert second.status == "queued" and "MLTRAINER_MAX_CONCURRENT_JOBS" in second.message
        done = wait_until(
            lambda: (j := app.store.get_job(second.id)).status == "succeeded" and j, timeout=120
        )
        assert app.store.get_job(first.id).finished_at <= done.started_at
    finally:
        app.close()

"""Remote jobs survive crashes without paying twice, retry what is transient, and stop when
cancelled: a real server (or its worker) killed with SIGKILL at the worst moments, the fake
Modal counting every run it took."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import connect, payload, server_process
from fakes.modal import SETTING, FakeModal, fast_settings

from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.jobs import procs

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command

SCRIPT = """
import json, os, time
from pathlib import Path
import pandas as pd
data, out = Path(os.environ["MLTRAINER_INPUT_DIR"]), Path(os.environ["MLTRAINER_OUTPUT_DIR"])
frame = pd.read_csv(data / "churn.csv")
print("read", len(frame), "rows", flush=True)
(out / "summary.json").write_text(json.dumps({"rows": len(frame)}))
"""
TERMINAL = ("succeeded", "failed", "cancelled")

pytest_plugins = ["modal_fixtures"]


def wait_until(predicate: Any, timeout: float = 240.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


@contextmanager
def http_server(home: Path, cwd: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``mltrainer serve --http`` on the fake Modal; the process, to kill it, and its URL."""
    env = {
        "MLTRAINER_MODAL_CLIENT": SETTING,
        "MLTRAINER_REMOTE_POLL_S": "0.2",
        "MLTRAINER_REMOTE_RETRY_WAIT_S": "0.05",
    }
    with server_process(home, cwd, **env) as (proc, url, _log):
        yield proc, url


def job_of(settings: Settings, job_id: str) -> Any:
    store = Store(settings.db_path)
    try:
        return store.get_job(job_id)
    finally:
        store.close()


def ended(settings: Settings, job_id: str) -> Any:
    job = job_of(settings, job_id)
    return job if job.status in TERMINAL else None


def script_job(dataset: Path, **extra: Any) -> dict[str, Any]:
    return {
        "script": SCRIPT,
        "runtime": "modal",
        "dataset": str(dataset),
        "outputs": ["summary.json"],
        **extra,
    }


@pytest.mark.anyio
async def test_kill_9_of_server_and_worker_mid_run_reattaches_after_restart_without_resubmitting(
    home: Path, tmp_path: Path, fake_modal: FakeModal, churn_csv: Path
) -> None:
    settings = Settings(home=home)
    fake_modal.hold()  # the run is taken but waits: the crash comes while it runs
    with http_server(home, tmp_path) as (server, url):
        async with connect("http", settings, url) as client:
            job = payload(await client.call_tool("submit_training", script_job(churn_csv)))
        submitted = wait_until(lambda: job_of(settings, job["job_id"]).remote_state == "submitted")
        running = job_of(settings, job["job_id"])
        assert submitted and running.remote_id in fake_modal.runs()
        server.send_signal(signal.SIGKILL)  # the machine goes down: the server ...
        server.wait(timeout=30)
        os.killpg(running.worker_pid, signal.SIGKILL)  # ... and the job's worker with it
        wait_until(lambda: not procs.alive(running.worker_pid, None))
    assert job_of(settings, job["job_id"]).status == "running"  # as the crash left it

    fake_modal.release()
    with http_server(home, tmp_path) as (_, url):
        final = wait_until(lambda: ended(settings, job["job_id"]))
        async with connect("http", settings, url) as client:
            view = payload(await client.call_tool("job_status", {"job_id": job["job_id"]}))
    assert final.status == "succeeded", final.error
    assert final.attempt == 2 and final.remote_id == running.remote_id
    assert fake_modal.runs() == [running.remote_id]  # one run taken, one paid for
    assert len(fake_modal.calls("spawn")) == 1
    outputs = view["result"]["outputs"]
    assert list(outputs) == ["summary.json"] and Path(outputs["summary.json"]).is_file()
    store = Store(settings.db_path)
    messages = [e.message for e in store.events(job["job_id"])]
    kinds = {a.kind for a in store.artifacts(job_id=job["job_id"])}
    store.close()
    assert any("Stage 'submit' was finished by attempt 1" in m for m in messages)
    assert any(m.startswith("read 400 rows") for m in messages)  # the remote log, as events
    assert kinds == {"output"}


@pytest.mark.anyio
async def test_a_worker_killed_between_submitting_and_recording_finds_the_run_instead_of_paying_again(
    home: Path, fake_modal: FakeModal, churn_csv: Path
) -> None:
    fake_modal.crash_after_spawn()  # the provider takes the run, the worker dies at once
    async with connect("memory", fast_settings(home)) as client:
        job = payload(await client.call_tool("submit_training", script_job(churn_csv)))
        settings = Settings(home=home)
        final = wait_until(lambda: ended(settings, job["job_id"]))
    assert final.status == "succeeded", final.error
    assert final.attempt == 2
    assert len(fake_modal.runs()) == 1 and final.remote_id == fake_modal.runs()[0]
    assert [c["job_id"] for c in fake_modal.calls("find")] == [job["job_id"]]
    store = Store(settings.db_path)
    messages = [e.message for e in store.events(job["job_id"])]
    store.close()
    assert any("already has run" in m and "not submitting again" in m for m in messages)


@pytest.mark.anyio
async def test_transient_errors_are_retried_per_stage_and_a_lost_answer_never_submits_twice(
    home: Path, fake_modal: FakeModal, churn_csv: Path
) -> None:
    fake_modal.fail_next("upload", 2)
    fake_modal.fail_next("spawn", 1, after=True)  # taken, but the answer is a 503
    fake_modal.fail_next("state", 2)
    fake_modal.fail_next("download", 1)
    async with connect("memory", fast_settings(home)) as client:
        job = payload(await client.call_tool("submit_training", script_job(churn_csv)))
        settings = Settings(home=home)
        final = wait_until(lambda: ended(settings, job["job_id"]))
    assert final.status == "succeeded", final.error
    assert len(fake_modal.runs()) == 1  # the retried submit found the run it had sent
    store = Store(settings.db_path)
    warnings = [e.message for e in store.events(job["job_id"]) if e.level == "warning"]
    store.close()
    for stage, tries in (("upload", 2), ("submit", 1), ("poll", 2), ("fetch", 1)):
        found = [m for m in warnings if m.startswith(f"{stage}: fake Modal")]
        assert len(found) == tries, (stage, warnings)
    assert any("already has run" in m for m in warnings)


@pytest.mark.anyio
async def test_retries_give_up_with_a_next_step_when_the_provider_stays_down(
    home: Path, fake_modal: FakeModal, churn_csv: Path
) -> None:
    fake_modal.fail_next("upload", 50)
    async with connect("memory", fast_settings(home, remote_retries=3)) as client:
        job = payload(await client.call_tool("submit_training", script_job(churn_csv)))
        settings = Settings(home=home)
        final = wait_until(lambda: ended(settings, job["job_id"]))
    assert final.status == "failed"
    assert "The upload stage failed 3 times" in (final.error or "")
    assert "never submitted twice" in (final.error or "")
    assert fake_modal.runs() == []


@pytest.mark.anyio
async def test_cancel_job_stops_the_remote_run(
    home: Path, fake_modal: FakeModal, churn_csv: Path
) -> None:
    fake_modal.hold()
    async with connect("memory", fast_settings(home)) as client:
        job = payload(await client.call_tool("submit_training", script_job(churn_csv)))
        settings = Settings(home=home)
        wait_until(lambda: job_of(settings, job["job_id"]).remote_state == "submitted")
        cancelled = payload(await client.call_tool("cancel_job", {"job_id": job["job_id"]}))
    run = job_of(settings, job["job_id"]).remote_id
    assert cancelled["status"] == "cancelled"
    assert f"Modal was asked to stop call {run}" in cancelled["error"]
    assert [c["call_id"] for c in fake_modal.calls("cancel")] == [run]
    pids = fake_modal.runner_pids()
    wait_until(lambda: not any(procs.alive(pid, None) for pid in pids))

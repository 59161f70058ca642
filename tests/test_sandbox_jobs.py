"""Long runs as 'code' jobs: their results, their sessions, and stopping them (every backend)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sandbox_fixtures import bwrap, isolated, leftovers, wait_until

from mltrainer.sandbox.manager import SandboxManager
from mltrainer.sandbox.models import RunResult
from mltrainer.state.errors import InvalidInput, JobStateError
from mltrainer.state.models import TERMINAL, JobRecord
from mltrainer.state.store import Store

__all__ = ["bwrap", "isolated"]

STARTED_THEN_SPIN = "open('started', 'w').close()\nwhile True: pass"


def store_of(manager: SandboxManager) -> Store:
    assert manager.store is not None
    return manager.store


def finished(manager: SandboxManager, job_id: str) -> JobRecord:
    store = store_of(manager)
    assert wait_until(lambda: store.get_job(job_id).status in TERMINAL, 300)
    return store.get_job(job_id)


def test_a_long_run_is_a_code_job_whose_result_is_the_run(isolated: SandboxManager) -> None:
    started = isolated.start_job("print('hi')", timeout_s=600)
    assert started.status == "running" and started.job_id and started.run_id
    assert f"job_status(job_id='{started.job_id}')" in started.next_step
    job = finished(isolated, started.job_id)
    assert (job.kind, job.status, job.error) == ("code", "succeeded", None)
    assert job.request["code"] == "print('hi')" and job.request["timeout_s"] == 600
    result = RunResult.model_validate(job.result)
    assert result.stdout == "hi\n" and result.status == "ok"
    assert (result.job_id, result.run_id) == (job.id, started.run_id)
    run = store_of(isolated).get_run(started.run_id)
    assert run.job_id == job.id and run.status == "ok"


def test_a_failing_code_job_fails_with_the_error_and_keeps_the_output(
    bwrap: SandboxManager,
) -> None:
    started = bwrap.start_job("print('before')\n1/0", timeout_s=600)
    assert started.job_id is not None
    job = finished(bwrap, started.job_id)
    assert job.status == "failed" and "ZeroDivisionError" in (job.error or "")
    assert job.result is not None and job.result["stdout"] == "before\n"


def test_cancel_job_kills_a_code_job_and_every_process_of_its_sandbox(
    isolated: SandboxManager,
) -> None:
    code = "import os\nif os.fork() == 0:\n    os.setsid()\n" + STARTED_THEN_SPIN
    started = isolated.start_job(code, timeout_s=3600)
    assert started.job_id is not None
    assert wait_until((Path(started.workspace) / "started").exists, 120)
    job = isolated.cancel_job(started.job_id)
    assert job.status == "cancelled" and "cancel_job" in (job.error or "")
    assert job.result is not None and job.result["status"] == "killed"
    assert "stopped on purpose" in job.result["next_step"]
    assert leftovers(isolated) == ([], [])
    with pytest.raises(JobStateError, match="already cancelled"):
        isolated.cancel_job(started.job_id)


def test_cancel_job_is_only_for_code_jobs(bwrap: SandboxManager) -> None:
    train = store_of(bwrap).create_job("train", {})
    with pytest.raises(InvalidInput, match="not a code job"):
        bwrap.cancel_job(train.id)


def test_a_cancel_asked_through_the_database_stops_the_job(bwrap: SandboxManager) -> None:
    """Another server sharing the database (or the jobs tools) only sets cancel_requested."""
    started = bwrap.start_job(STARTED_THEN_SPIN, timeout_s=3600)
    assert started.job_id is not None
    assert wait_until((Path(started.workspace) / "started").exists, 120)
    store_of(bwrap).update_job(started.job_id, cancel_requested=True)
    assert finished(bwrap, started.job_id).status == "cancelled"
    assert leftovers(bwrap) == ([], [])


def test_a_code_job_in_a_session_holds_it_and_keeps_its_variables(bwrap: SandboxManager) -> None:
    code = (
        "import os, time\nopen('started', 'w').close()\n"
        "while not os.path.exists('go'):\n    time.sleep(0.05)\nvalue = 7"
    )
    started = bwrap.start_job(code, session="js", timeout_s=600)
    assert started.job_id is not None and started.session == "js"
    workspace = Path(started.workspace)
    assert wait_until((workspace / "started").exists, 120)
    assert bwrap.info().sessions[0].job_id == started.job_id
    with pytest.raises(JobStateError, match="busy running job"):
        bwrap.run("1", session="js")
    (workspace / "go").touch()
    assert finished(bwrap, started.job_id).status == "succeeded"
    result, _ = bwrap.run("value * 6", session="js")
    assert result.stdout == "42\n"


def test_shutdown_stops_running_code_jobs_and_fails_them(bwrap: SandboxManager) -> None:
    started = bwrap.start_job(STARTED_THEN_SPIN, timeout_s=3600)
    assert started.job_id is not None
    assert wait_until((Path(started.workspace) / "started").exists, 120)
    bwrap.close()
    job = store_of(bwrap).get_job(started.job_id)
    assert job.status == "failed" and "shutting down" in (job.error or "")
    assert leftovers(bwrap) == ([], [])

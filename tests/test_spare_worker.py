"""The spare worker (tools/jobs/spare.py): the next job is handed to a worker started ahead and
runs there as in a worker of its own; a spare starts only while no job's worker lives, is never
handed a job near its idle limit, and leaves when it waits too long or when the server goes."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import payload, server_env, train_until_done
from mcp import Client, StdioServerParameters
from test_jobs import ended, wait_until

from mltrainer.server.context import build_context
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.jobs import manager, procs, spare
from mltrainer.tools.jobs.manager import SETTINGS_ENV, WORKER_MODULE
from mltrainer.tools.training.request import TrainRequest


def spares(settings: Settings) -> list[psutil.Process]:
    """The live spare workers of this state directory (they run in its jobs folder)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmdline, cwd = proc.info["cmdline"] or [], proc.info["cwd"]
        ours = spare.FLAG in cmdline and cwd and Path(cwd) == settings.jobs_dir
        if ours and procs.alive(proc.pid, None):
            found.append(proc)
    return found


def one_spare(settings: Settings) -> int:
    return wait_until(lambda: len(found := spares(settings)) == 1 and found[0].pid, timeout=60)


def request(dataset: Path) -> TrainRequest:
    return TrainRequest(dataset=str(dataset), target="label", time_budget_s=5)


def test_the_job_runs_in_the_spare_and_the_next_spare_rests_after_its_end(
    home: Path, churn_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manager, "SPARE_REST_S", 6.0)
    settings = Settings(home=home, spare_worker=True)
    app = build_context(settings)
    try:
        first = one_spare(settings)
        job = app.jobs.submit(request(churn_csv))
        assert job.worker_pid == first
        final = wait_until(lambda: ended(app.store, job.id), timeout=300)
        seen_end = time.time()
        assert final.status == "succeeded", final.error
        assert (final.result or {}).get("model_id")
        assert (settings.jobs_dir / job.id / "worker.log").exists()
        # The next spare comes once the job's worker has gone, the whole rest after its end
        # (counted from the supervisor's first round that saw no worker), and the caller's
        # next calls had the machine to themselves. Slack: how late this test saw the end.
        second = one_spare(settings)
        assert second != first and not procs.alive(first, None)
        assert psutil.Process(second).create_time() > seen_end + 6.0 - 1.5
    finally:
        app.close()
    wait_until(lambda: not spares(settings), timeout=30)  # it leaves with the server


@pytest.mark.slow
def test_a_spare_near_its_idle_limit_is_stopped_and_the_job_starts_its_own_worker(
    home: Path, churn_csv: Path
) -> None:
    settings = Settings(home=home, spare_worker=True, spare_worker_idle_s=spare.MARGIN_S + 1)
    app = build_context(settings)
    try:
        old = one_spare(settings)
        time.sleep(1.5)  # now within MARGIN_S of its limit
        job = app.jobs.submit(request(churn_csv))
        assert job.worker_pid != old
        wait_until(lambda: not procs.alive(old, None), timeout=30)
        final = wait_until(lambda: ended(app.store, job.id), timeout=300)
        assert final.status == "succeeded", final.error
    finally:
        app.close()


@pytest.mark.slow
def test_a_spare_leaves_after_its_idle_time_and_is_not_restarted_until_a_job_ran(
    home: Path, churn_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manager, "SPARE_REST_S", 0.0)
    settings = Settings(home=home, spare_worker=True, spare_worker_idle_s=1)
    app = build_context(settings)
    try:
        old = one_spare(settings)
        wait_until(lambda: not procs.alive(old, None), timeout=60)
        time.sleep(5)  # two rounds of supervision: no new spare while nobody trains
        assert not spares(settings)
        job = app.jobs.submit(request(churn_csv))
        final = wait_until(lambda: ended(app.store, job.id), timeout=300)
        assert final.status == "succeeded", final.error
        assert one_spare(settings) != old  # wanted again once a job ran
    finally:
        app.close()


@pytest.mark.parametrize("line", [b"../../outside 1\n", b"job_1 one\n"])
def test_a_spare_handed_anything_but_a_job_leaves_without_running_anything(
    settings: Settings, line: bytes
) -> None:
    env = {**os.environ, SETTINGS_ENV: settings.model_dump_json()}
    settings.jobs_dir.mkdir(parents=True, exist_ok=True)
    proc = procs.spawn(
        ["-m", WORKER_MODULE, spare.FLAG],
        log_path=settings.jobs_dir / "spare.log",
        env=env,
        cwd=settings.jobs_dir,
        piped=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(line)
    proc.stdin.close()
    assert proc.wait(timeout=120) == 0
    assert sorted(p.name for p in settings.jobs_dir.iterdir()) == ["spare.log"]
    assert not (settings.home.parent / "outside").exists()


@pytest.mark.anyio
async def test_train_model_through_mcp_runs_in_the_spare(home: Path, churn_csv: Path) -> None:
    settings = Settings(home=home)
    server = StdioServerParameters(
        command=sys.executable,
        args=["-P", "-m", "mltrainer.server.cli", "serve"],
        env=server_env(home, MLTRAINER_SPARE_WORKER="true"),
        cwd=str(churn_csv.parent),
    )
    async with Client(server) as client:
        ready = one_spare(settings)
        arguments = {"dataset": str(churn_csv), "target": "label", "time_budget_s": 5}
        done = payload(await train_until_done(client, arguments))
        assert done["status"] == "succeeded", done.get("error")
    assert Store(settings.db_path).get_job(done["job_id"]).worker_pid == ready
    wait_until(lambda: not spares(settings), timeout=30)

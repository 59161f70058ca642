"""The engine's fan-out (``parallel``): the search's trials in worker processes.

The promises: train_model(parallel=2) here runs two trials at a time in worker processes and
ends with a model predict uses; a parallel search is reproducible; worker processes evaluate a
trial exactly as the search's own process does; a worker that dies is a recorded failure and
the search goes on; the runtimes refuse what they cannot fan out (tests/test_runtimes_fanout.py).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from conftest import connect, payload

from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.training.automl import fit_automl
from mltrainer.tools.training.engine.fanout import InProcess, Processes, Trial
from mltrainer.tools.training.engine.search import Search
from mltrainer.tools.training.progress import NullReporter
from tests.engine_fixtures import assert_converges_the_same, mixed_classification
from tests.fanout_fixtures import killed_on_knn, problem_of, request

SPAWNED = "multiprocessing.spawn"  # in a spawned worker's command line


def wait_until(condition, seconds: float = 120.0):  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it is truthy (its value) or ``seconds`` pass (None)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    return None


def spawned_workers(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if SPAWNED in " ".join(child.cmdline()) and "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def test_worker_processes_evaluate_a_trial_exactly_as_this_process_does() -> None:
    """The same trials, in two worker processes and here: the same candidates, in order."""
    problem = problem_of()
    trials = [
        Trial("linear", {"C": 1.0}, keep_models=True),
        Trial("knn", {"n_neighbors": 15, "weights": "distance"}, keep_models=True),
        Trial("linear", {"C": 0.1}, keep_models=False),
    ]
    deadline = time.monotonic() + 600
    here = InProcess(problem).evaluate(trials, deadline)
    workers = Processes(problem, 2)
    try:
        there = workers.evaluate(trials, deadline)
    finally:
        workers.close()
    for mine, theirs in zip(here, there, strict=True):
        assert mine.candidate is not None and theirs.candidate is not None, (mine, theirs)
        assert (theirs.candidate.family, theirs.candidate.params) == (
            mine.candidate.family,
            mine.candidate.params,
        )
        assert theirs.candidate.cv_mean == mine.candidate.cv_mean
        assert np.array_equal(theirs.candidate.oof, mine.candidate.oof)
        assert theirs.seconds > 0
    assert there[0].candidate.models and there[2].candidate.models is None  # type: ignore[union-attr]
    assert workers.restarts == 0


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX")
def test_a_worker_killed_mid_trial_is_a_recorded_failure_and_the_search_goes_on() -> None:
    """knn's worker is killed whenever it evaluates knn: each such trial is recorded as a
    failure of knn (dropped after two), a new pool takes over, linear goes on."""
    problem = problem_of()
    workers = Processes(problem, 2, task=killed_on_knn)
    events: list[str] = []
    search = Search(
        problem,
        ["linear", "knn"],
        0,
        lambda c: None,
        events.append,
        lambda: len(search.candidates) >= 6,
        evaluator=workers,
    )
    stopped = search.run(lambda: time.monotonic() + 3600)

    assert stopped == "cancelled"  # it went on after knn was dropped, until told to stop
    assert len(search.candidates) >= 6
    assert {c.family for c in search.candidates} == {"linear"}
    assert [c.id for c in search.candidates] == list(range(len(search.candidates)))
    assert len(search.failures["knn"]) == 2
    assert all(f.startswith("WorkerDied: ") for f in search.failures["knn"])
    assert search.dropped["knn"].startswith("failed twice: WorkerDied")
    assert any(e.startswith("knn dropped: failed twice: WorkerDied") for e in events)
    assert workers.restarts >= 2
    assert workers._pool is None  # closed when the search ended


@pytest.mark.slow
def test_a_parallel_search_that_converges_ends_the_same_on_every_run() -> None:
    """Two runs with one seed, two trials at a time: the same leaderboard and predictions."""
    frame = mixed_classification(rows=300)
    settings = {"target": "label", "time_budget_s": 240, "models": ["linear", "knn"], "seed": 3}

    fanned_out = ("search", "2 trials at a time on worker processes on this machine")
    assert_converges_the_same(frame, request(**settings, parallel=2), fanned_out)


@pytest.mark.slow
@pytest.mark.anyio
async def test_train_model_parallel_2_runs_two_trials_at_a_time_in_worker_processes(
    settings: Settings, churn_csv: Path
) -> None:
    async with connect("memory", settings) as client:
        started = payload(
            await client.call_tool(
                "train_model",
                {
                    "dataset": str(churn_csv),
                    "target": "label",
                    "time_budget_s": 40,
                    "parallel": 2,
                    "wait_s": 0,
                },
            )
        )
        store = Store(settings.db_path)  # a second reader, as another process would be
        try:
            worker = wait_until(lambda: store.get_job(started["job_id"]).worker_pid)
        finally:
            store.close()
        assert worker
        # The job's worker spawns two processes for the search (they end with it).
        pool = wait_until(lambda: len(spawned_workers(worker)) >= 2 and spawned_workers(worker))
        assert pool and all(p.ppid() == worker for p in pool), pool

        job = payload(
            await client.call_tool("job_status", {"job_id": started["job_id"], "wait_s": 45})
        )
        while job["status"] in ("queued", "running"):
            job = payload(
                await client.call_tool("job_status", {"job_id": started["job_id"], "wait_s": 45})
            )
        assert job["status"] == "succeeded", job.get("error")
        decisions = [(d["stage"], d["decision"]) for d in job["result"]["decisions"]]
        assert ("search", "2 trials at a time on worker processes on this machine") in decisions
        assert job["result"]["leaderboard"]
        predicted = payload(
            await client.call_tool("predict", {"model": job["model_id"], "dataset": str(churn_csv)})
        )
        assert predicted["n_rows"] == 400
    # The workers ended with the search (the pool is closed, not left to the job's end).
    assert wait_until(lambda: not any(p.is_running() for p in pool), 60)


def test_a_clustering_run_says_its_search_does_not_fan_out() -> None:
    """parallel fans out the tabular search only: a clustering run records that it ran one
    trial at a time, rather than leaving the caller to think it fanned out."""
    import pandas as pd
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n_samples=200, centers=3, cluster_std=0.6, random_state=0)
    frame = pd.DataFrame(X, columns=["u", "v"])
    result = fit_automl(frame, request(task="clustering", parallel=2), NullReporter())
    decisions = {(d.stage, d.decision): d.reason for d in result.decisions}
    reason = decisions[("search", "one trial at a time")]
    assert reason == "parallel=2 fans out the tabular search only, not clustering"

"""A remote run that fails: the planner reacts once where it can (out of memory, timeout),
records the decision with the error that caused it and resubmits within the cost cap;
otherwise the job fails with the end of the run's log and a next step."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import connect, payload, train_until_done
from fakes.modal import FakeModal, fast_settings

from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.runtimes.reaction import react
from mltrainer.tools.training.request import TrainRequest

pytest_plugins = ["modal_fixtures"]


def events(settings: Settings, job_id: str) -> list[str]:
    store = Store(settings.db_path)
    try:
        return [e.message for e in store.events(job_id, limit=100_000)]
    finally:
        store.close()


@pytest.mark.slow  # two planned runs each: 30-35 s on a slow machine
@pytest.mark.anyio
async def test_out_of_memory_is_planned_again_once_on_a_sample_with_lighter_families(
    home: Path, fake_modal: FakeModal, churn_csv: Path
) -> None:
    fake_modal.script_runs(["oom"])  # the first run dies for memory, the second runs
    settings = fast_settings(home)
    async with connect("memory", settings) as client:
        job = payload(
            await train_until_done(
                client, {"dataset": str(churn_csv), "target": "label", "runtime": "modal"}
            )
        )
    assert job["status"] == "succeeded", job["error"]
    first, second = fake_modal.calls("spawn")
    assert first["job"]["job_id"] == job["job_id"]
    assert second["job"]["job_id"] == f"{job['job_id']}-2"  # found by its own name
    decision = job["result"]["decisions"][0]
    assert decision["stage"] == "runtime"
    assert "a row sample that fits 8192 MB" in decision["decision"]
    assert "hist_gradient_boosting, linear" in decision["decision"]
    assert "out of memory" in decision["reason"] and "OOMKilled" in decision["reason"]
    engine = json.loads(Path(second["job"]["run_dir"], "engine.json").read_text())
    assert engine["request"]["max_memory_mb"] == 8192
    assert engine["request"]["models"] == ["hist_gradient_boosting", "linear"]
    assert any(
        m.startswith("Planner: the run failed (out of memory")
        for m in events(settings, job["job_id"])
    )
    assert len(fake_modal.runs()) == 2 and job["remote"]["remote_id"] in fake_modal.runs()


@pytest.mark.slow  # two planned runs each: 30-35 s on a slow machine
@pytest.mark.anyio
async def test_no_second_run_when_the_cap_would_not_cover_both(
    home: Path, fake_modal: FakeModal, churn_csv: Path
) -> None:
    fake_modal.script_runs(["timeout@0.30"])  # it ran until its timeout: $0.30 billed
    settings = fast_settings(home)
    arguments = {"dataset": str(churn_csv), "target": "label", "runtime": "modal"}
    async with connect("memory", settings) as client:
        dry = payload(await client.call_tool("train_model", {**arguments, "dry_run": True}))
        one_run = dry["preflight"]["estimate"]["usd"]
        cap = round(one_run + 0.1, 2)  # a second run fits the cap, not with the first's $0.30
        job = payload(await train_until_done(client, {**arguments, "max_cost_usd": cap}))
    assert job["status"] == "failed"
    assert "timed out" in job["error"] and "The end of its log" in job["error"]
    assert len(fake_modal.runs()) == 1
    assert job["remote"]["cost_usd"] == 0.30  # the actual cost, as the provider reported it
    said = events(settings, job["job_id"])
    assert any(
        "The planner would run again with half the time budget" in m and f"${cap:.2f}" in m
        for m in said
    )


@pytest.mark.anyio
async def test_a_failure_of_the_script_itself_ends_the_job_with_its_log_and_a_next_step(
    home: Path, fake_modal: FakeModal, churn_csv: Path
) -> None:
    fake_modal.script_runs(["crash"])
    settings = fast_settings(home)
    script = "import os\nfrom pathlib import Path\n(Path(os.environ['MLTRAINER_OUTPUT_DIR']) / 'x.txt').write_text('x')\n"
    async with connect("memory", settings) as client:
        job = payload(
            await client.call_tool("submit_training", {"script": script, "runtime": "modal"})
        )
        deadline = time.monotonic() + 240
        while (
            job["status"] not in ("succeeded", "failed", "cancelled")
            and time.monotonic() < deadline
        ):
            job = payload(
                await client.call_tool("job_status", {"job_id": job["job_id"], "wait_s": 5})
            )
    assert job["status"] == "failed"
    assert "The script exited with code 1" in job["error"]
    assert "ValueError: could not convert string to float: 'n/a'" in job["error"]  # the log's end
    assert "dry_run=True" in job["error"] and "submit_training again" in job["next_step"]
    assert len(fake_modal.runs()) == 1  # no reaction for a bug: a second run would fail alike


def test_the_planner_reacts_only_to_memory_and_time() -> None:
    request = TrainRequest(dataset="d.csv", target="y", time_budget_s=600)
    oom = react(request, "Killed: the container was OOMKilled (exit code 137)", 16.0)
    assert oom is not None and oom.cause == "out of memory"
    assert oom.request.max_memory_mb == 8192 and oom.request.models == [
        "hist_gradient_boosting",
        "linear",
    ]
    slow = react(request, "FunctionTimeoutError: timed out after 1200 s", 16.0)
    assert slow is not None and slow.request.time_budget_s == 300
    assert react(request, "KeyError: 'price'", 16.0) is None
    assert react(request, "the zoom and room of a bloom", 16.0) is None  # no 'oom' by accident
    shortest = request.model_copy(update={"time_budget_s": 5})
    assert react(shortest, "timed out", 16.0) is None  # nothing left to halve

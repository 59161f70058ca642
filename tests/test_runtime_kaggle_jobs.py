"""The Kaggle kernels runtime through the job machinery and a real MCP client, on the fake
Kaggle that really runs each pushed kernel: ``train_model(runtime='kaggle')`` validates,
uploads, pushes, polls and fetches the model folder, which ``predict`` then uses here;
``submit_training(runtime='kaggle')`` brings a script's outputs back; ``cancel_job`` says
that Kaggle cannot stop a running kernel."""

from __future__ import annotations

import ast
import base64
import io
import os
import signal
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import connect, payload, train_until_done
from fakes.kaggle import KEY, USERNAME, FakeKaggle
from fakes.kaggle_kernels import FakeKernel
from runtime_kaggle_fixtures import KaggleEnv, make_spec, start_kaggle
from test_runtimes_recovery import ended, http_server, job_of, wait_until
from test_runtimes_recovery import script_job as recovery_script_job

from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.jobs import procs

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command

pytest_plugins = ["runtime_kaggle_fixtures"]


@pytest.fixture
def kaggle(kaggle_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKaggle]:
    """The fake Kaggle, running what is pushed; secret://KAGGLE from the environment, which
    the job workers inherit."""
    monkeypatch.setenv("KAGGLE_USERNAME", USERNAME)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    with start_kaggle() as fake:
        fake.run_kernels = True
        yield fake


@pytest.fixture
def kaggle_settings(kaggle_home: Path, kaggle: FakeKaggle) -> Settings:
    return Settings(
        home=kaggle_home,
        kaggle_api_endpoint=kaggle.url,
        allow_loopback_http=True,
        remote_poll_s=0.2,
        remote_retry_wait_s=0.05,
    )


def pushes(fake: FakeKaggle) -> int:
    return sum(len(kernel.pushes) for kernel in fake.kernels.values())


def shipped_files(kernel: FakeKernel) -> list[str]:
    """The files of the run folder the pushed script carries (its BUNDLE literal)."""
    tree = ast.parse(kernel.source)
    (literal,) = (
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "BUNDLE"
    )
    data = base64.b64decode("".join(ast.literal_eval(literal)))
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def messages(settings: Settings, job_id: str) -> list[str]:
    store = Store(settings.db_path)
    try:
        return [e.message for e in store.events(job_id, limit=100_000)]
    finally:
        store.close()


def script_job(dataset: Path) -> dict[str, Any]:
    return recovery_script_job(dataset, runtime="kaggle")


@pytest.mark.anyio
async def test_train_model_on_kaggle_brings_back_a_model_predict_uses_here(
    kaggle_settings: Settings, kaggle: FakeKaggle, churn_csv: Path
) -> None:
    async with connect("memory", kaggle_settings) as client:
        result = await train_until_done(
            client,
            {"dataset": str(churn_csv), "target": "label", "runtime": "kaggle", "gpu": "T4"},
        )
        job = payload(result)
        assert job["status"] == "succeeded", job["error"]
        slug = job["job_id"].replace("_", "-")
        assert job["runtime"] == "kaggle"
        assert job["remote"]["remote_id"] == f"{USERNAME}/mltrainer-{slug}"
        assert job["model_id"] and job["result"]["leaderboard"]
        assert job["preflight"]["estimate"]["free"] is True
        predicted = payload(
            await client.call_tool("predict", {"model": job["model_id"], "dataset": str(churn_csv)})
        )
        assert predicted["n_rows"] == 400
    assert pushes(kaggle) == 1
    (kernel,) = kaggle.kernels.values()
    push = kernel.pushes[0]
    # internet on: the kernel installs the exact library versions the model needs to load here
    assert push["enableGpu"] is True and push["enableInternet"] is True
    assert push["datasetDataSources"] == [f"{USERNAME}/mltrainer-data-{slug}"]
    model = kaggle_settings.models_dir / job["model_id"]
    assert (model / "model.skops").is_file() and (model / "meta.json").is_file()
    # Kaggle's image has no mltrainer: the engine's entry point carries the project's code.
    files = shipped_files(kernel)
    assert {"train.py", "engine.json", "mltrainer/tools/runtimes/engine_entry.py"} <= set(files)
    assert not any(f.startswith("mltrainer/server/") for f in files)


@pytest.mark.anyio
async def test_submit_training_on_kaggle_brings_back_the_script_outputs(
    kaggle_settings: Settings, kaggle: FakeKaggle, churn_csv: Path
) -> None:
    async with connect("memory", kaggle_settings) as client:
        job = payload(await client.call_tool("submit_training", script_job(churn_csv)))
        final = wait_until(lambda: ended(kaggle_settings, job["job_id"]))
        view = payload(await client.call_tool("job_status", {"job_id": job["job_id"]}))
    assert final.status == "succeeded", final.error
    outputs = view["result"]["outputs"]
    assert list(outputs) == ["summary.json"]
    assert Path(outputs["summary.json"]).read_text() == '{"rows": 400}'
    (kernel,) = kaggle.kernels.values()
    assert len(kernel.pushes) == 1 and shipped_files(kernel) == ["train.py"]
    assert any(m.startswith("read 400 rows") for m in messages(kaggle_settings, job["job_id"]))


@pytest.mark.anyio
async def test_cancel_job_of_a_kaggle_job_says_the_kernel_cannot_be_stopped(
    kaggle_settings: Settings, kaggle: FakeKaggle, churn_csv: Path
) -> None:
    kaggle.hold_runs = True  # the kernel is taken and waits in the queue
    async with connect("memory", kaggle_settings) as client:
        job = payload(await client.call_tool("submit_training", script_job(churn_csv)))
        wait_until(lambda: job_of(kaggle_settings, job["job_id"]).remote_state == "submitted")
        cancelled = payload(await client.call_tool("cancel_job", {"job_id": job["job_id"]}))
    assert cancelled["status"] == "cancelled"
    assert "Kaggle's API cannot stop a running kernel" in cancelled["error"]
    assert "may go on until it ends or reaches its timeout" in cancelled["error"]
    (kernel,) = kaggle.kernels.values()
    kernel.started.set()  # let the fake's run end
    assert kernel.finished.wait(120)


@pytest.mark.anyio
async def test_a_server_killed_mid_run_re_attaches_to_its_kaggle_kernel_after_restart(
    kaggle_home: Path,
    kaggle: FakeKaggle,
    tmp_path: Path,
    churn_csv: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in (
        ("MLTRAINER_KAGGLE_API_ENDPOINT", kaggle.url),
        ("MLTRAINER_ALLOW_LOOPBACK_HTTP", "1"),
    ):
        monkeypatch.setenv(name, value)  # the server processes read their settings from it
    settings = Settings(home=kaggle_home)
    kaggle.hold_runs = True  # the kernel is taken but waits: the crash comes while it runs
    with http_server(kaggle_home, tmp_path) as (server, url):
        async with connect("http", settings, url) as client:
            job = payload(await client.call_tool("submit_training", script_job(churn_csv)))
        wait_until(lambda: job_of(settings, job["job_id"]).remote_state == "submitted")
        running = job_of(settings, job["job_id"])
        server.send_signal(signal.SIGKILL)  # the machine goes down: the server ...
        server.wait(timeout=30)
        os.killpg(running.worker_pid, signal.SIGKILL)  # ... and the job's worker with it
        wait_until(lambda: not procs.alive(running.worker_pid, None))
    assert job_of(settings, job["job_id"]).status == "running"

    (kernel,) = kaggle.kernels.values()
    kernel.started.set()
    with http_server(kaggle_home, tmp_path) as (_, url):
        final = wait_until(lambda: ended(settings, job["job_id"]))
    assert final.status == "succeeded", final.error
    assert final.attempt == 2 and final.remote_id == running.remote_id == kernel.ref
    assert len(kernel.pushes) == 1  # re-attached, never pushed again


@pytest.mark.anyio
async def test_a_worker_killed_as_kaggle_took_the_kernel_finds_it_instead_of_pushing_again(
    kaggle_settings: Settings, kaggle: FakeKaggle, churn_csv: Path
) -> None:
    def crash(kernel: FakeKernel) -> None:
        """The push is taken, and its worker dies before it hears the answer."""
        job_id = "job_" + kernel.slug.removeprefix("mltrainer-job-")
        os.killpg(job_of(kaggle_settings, job_id).worker_pid, signal.SIGKILL)
        kaggle.on_push = None

    kaggle.on_push = crash
    async with connect("memory", kaggle_settings) as client:
        job = payload(await client.call_tool("submit_training", script_job(churn_csv)))
        final = wait_until(lambda: ended(kaggle_settings, job["job_id"]))
    assert final.status == "succeeded", final.error
    assert final.attempt == 2
    (kernel,) = kaggle.kernels.values()
    assert len(kernel.pushes) == 1 and final.remote_id == kernel.ref
    found = [m for m in messages(kaggle_settings, job["job_id"]) if "already has run" in m]
    assert found and "not submitting again" in found[0]


def test_upload_ships_the_data_once_and_submit_after_it_sends_it_no_more(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    """The job code calls upload in its own stage (again after a restart), then submit."""
    spec = make_spec(tmp_path)
    kg.runtime.upload(spec)
    kg.fresh_runtime().upload(spec)
    kg.runtime.submit(spec)
    assert len(kg.calls("CreateDataset")) == 1 and kg.calls("CreateDatasetVersion") == []
    assert len(kg.calls("SaveKernel")) == 1

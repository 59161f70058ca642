"""train_model(runtime='modal') end to end through a real MCP client, on the fake Modal:
the same engine runs "remotely" (the fake runs its entry point), the model comes back into
the state directory, registered like a local one, and predict uses it here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import connect, payload, train_until_done
from fakes.modal import FakeModal

from mltrainer.state.settings import Settings

pytest_plugins = ["modal_fixtures"]


@pytest.mark.anyio
async def test_train_model_on_modal_brings_back_a_model_predict_uses_here(
    modal_settings: Settings, fake_modal: FakeModal, churn_csv: Path
) -> None:
    async with connect("memory", modal_settings) as client:
        result = await train_until_done(
            client,
            {"dataset": str(churn_csv), "target": "label", "runtime": "modal", "gpu": "T4"},
        )
        job = payload(result)
        assert job["status"] == "succeeded", job["error"]
        assert job["runtime"] == "modal" and job["remote"]["remote_id"].startswith("fc-")
        assert job["model_id"] and job["result"]["leaderboard"]
        assert job["preflight"]["estimate"]["usd"] > 0
        predicted = payload(
            await client.call_tool("predict", {"model": job["model_id"], "dataset": str(churn_csv)})
        )
        assert predicted["n_rows"] == 400
    assert len(fake_modal.calls("spawn")) == 1
    assert_adopting_again_finds_the_model_already_moved(modal_settings, job)


def assert_adopting_again_finds_the_model_already_moved(
    settings: Settings, job: dict[str, Any]
) -> None:
    """A worker that died after moving the model folder into models/ but before recording
    its stage: the next attempt finds the folder there (the fetched copy is gone) and
    registers the same model, its file hash checked again."""
    from mltrainer.state.store import Store
    from mltrainer.tools.runtimes.adopt import adopt_model
    from mltrainer.tools.runtimes.files import FETCHED
    from mltrainer.tools.runtimes.jobspec import run_dir

    fetched = settings.jobs_dir / job["job_id"] / FETCHED / "1"
    assert fetched.is_dir() and not (fetched / "model").exists()
    store = Store(settings.db_path)
    before = store.get_model(job["model_id"])
    again = adopt_model(
        fetched, run_dir(settings, job["job_id"], 1), settings, store, job["job_id"]
    )
    assert again.model_id == job["model_id"]
    after = store.get_model(job["model_id"])
    assert after.file_sha256 == before.file_sha256 and after.path == before.path


def test_the_real_modal_objects_of_a_job_are_built_without_the_network(
    modal_settings: Settings, fake_modal: FakeModal, churn_csv: Path
) -> None:
    """The one test of the real SDK: the app, image, function and Volume of a job, with its
    GPU, CPU and memory (limit = request), timeout, Volume and a Modal secret for the run,
    and the project's code in the image, found package by package in our namespace-mapped
    install. Nothing is deployed or run."""
    from mltrainer.state.secrets import SecretVault
    from mltrainer.tools.runtimes.jobspec import engine_spec
    from mltrainer.tools.runtimes.modal import ModalRuntime
    from mltrainer.tools.runtimes.modal_sdk import build_app, function_options
    from mltrainer.tools.runtimes.source import pinned_requirements
    from mltrainer.tools.training.request import TrainRequest
    from mltrainer.tools.training.versions import library_versions

    modal_settings.ensure_dirs()
    vault = SecretVault.for_settings(modal_settings)
    vault.set("RUN_API_KEY", "run-key-0123456789abcdef", hosts=["api.modal.com"])
    request = TrainRequest(dataset=str(churn_csv), target="label", runtime="modal", gpu="A10G")
    spec = engine_spec(modal_settings, "job_0123456789ab", request)
    spec = spec.model_copy(update={"secrets": ["secret://RUN_API_KEY"]})
    runtime = ModalRuntime.connect(modal_settings, vault)
    assert runtime.validate(spec) == []
    job = runtime.job(spec, with_secrets=True)
    app, function, image, volume, trials = build_app(job)

    assert app.name == "mltrainer-job-0123456789ab"
    assert trials is None  # parallel=1: the search runs in run_entry's container alone
    assert job.gpu == "A10"  # our A10G, by Modal's name
    options = function_options(job)
    assert options["timeout"] == request.time_budget_s + 600 and options["retries"] == 0
    assert options["startup_timeout"] == 600
    described = function._spec_  # what Modal will create, as the SDK holds it
    assert described.gpus == "A10"
    assert described.cpu == (4.0, 4.0) and described.memory == (16384, 16384)
    assert repr(described.volumes["/mltrainer"]) == repr(volume)
    assert "mltrainer-job-0123456789ab" in repr(volume)
    assert [repr(s) for s in described.secrets] == ["Secret.from_dict([RUN_API_KEY])"]
    assert job.secret_env == {"RUN_API_KEY": "run-key-0123456789abcdef"}
    # A dump of the job (logged, recorded, sent) never holds the secret's value.
    assert "run-key-0123456789abcdef" not in job.model_dump_json() + repr(job)

    # The image: the project's packages as local source, pinned to the versions here.
    inner = image._sync_synchronizer._translate_in(image)  # type: ignore[attr-defined]
    mount = inner._deps()[1]
    shipped = {str(remote) for entry in mount._entries for _, remote in entry.get_files_to_upload()}
    for path in (
        "/root/mltrainer/tools/runtimes/engine_entry.py",
        "/root/mltrainer/tools/runtimes/data/catalogue.json",
        "/root/mltrainer/tools/training/automl.py",
        "/root/mltrainer/state/settings.py",
    ):
        assert path in shipped
    assert not any("__pycache__" in p or p.startswith("/root/mltrainer/server") for p in shipped)
    pins = pinned_requirements()
    assert job.requirements == pins
    for name, version in library_versions().items():
        if name != "mltrainer-mcp":
            assert f"{name}=={version}" in pins
    assert not any(p.startswith(("mcp==", "modal==", "kaggle==")) for p in pins)
    assert fake_modal.calls() == []  # building needed nothing of the client

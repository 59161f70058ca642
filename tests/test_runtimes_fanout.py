"""``parallel`` on the remote runtimes: Modal fans the search out (the fan-out function is
built with the job's resources; through the boundary fake, whose "container" runs the engine
with worker processes standing for N containers, a parallel job ends with a model predict
uses); Kaggle, one machine per kernel, refuses it before anything is sent. Modal's own limit
on parallel is tests/test_runtimes_guard.py's (refused before anything reaches the fake)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import connect, error_text, payload, train_until_done
from fakes.kaggle import KEY, USERNAME, FakeKaggle
from fakes.modal import FakeModal
from runtime_kaggle_fixtures import KaggleEnv, make_spec, start_kaggle

from mltrainer.state.settings import Settings
from mltrainer.tools.runtimes.base import Resources

pytest_plugins = ["runtime_kaggle_fixtures", "modal_fixtures"]
FANNED_OUT = ("search", "2 trials at a time on worker processes on this machine")


def test_a_parallel_job_gets_a_fan_out_function_with_its_resources(
    modal_settings: Settings, fake_modal: FakeModal, churn_csv: Path
) -> None:
    """Built locally, without the network: run_trial beside run_entry, the same image, GPU,
    CPU, memory, timeout and Volume, no secrets, at most ``parallel`` containers at once."""
    from mltrainer.state.secrets import SecretVault
    from mltrainer.tools.runtimes.jobspec import engine_spec
    from mltrainer.tools.runtimes.modal import ModalRuntime
    from mltrainer.tools.runtimes.modal_sdk import build_app, function_options, trial_options
    from mltrainer.tools.training.request import TrainRequest

    modal_settings.ensure_dirs()
    vault = SecretVault.for_settings(modal_settings)
    vault.set("RUN_API_KEY", "run-key-0123456789abcdef", hosts=["api.modal.com"])
    request = TrainRequest(
        dataset=str(churn_csv), target="label", runtime="modal", gpu="A10G", parallel=3
    )
    spec = engine_spec(modal_settings, "job_0123456789ab", request)
    spec = spec.model_copy(update={"secrets": ["secret://RUN_API_KEY"]})
    runtime = ModalRuntime.connect(modal_settings, vault)
    assert runtime.validate(spec) == []
    job = runtime.job(spec, with_secrets=True)
    assert job.parallel == 3
    built = build_app(job)

    assert built.trials is not None
    entry, trials = built.function._spec_, built.trials._spec_
    assert trials.gpus == entry.gpus == "A10"
    assert trials.cpu == entry.cpu == (4.0, 4.0)
    assert trials.memory == entry.memory == (16384, 16384)
    assert repr(trials.volumes["/mltrainer"]) == repr(built.volume)
    assert trials.image is entry.image  # the job's image
    assert trials.secrets == [] and len(entry.secrets) == 1  # a trial needs no credential
    options = trial_options(job)
    assert options["name"] == "run_trial" and options["max_containers"] == 3
    shared = {k: v for k, v in function_options(job).items() if k != "name"}
    assert {k: options[k] for k in shared} == shared  # timeout, retries=0, startup timeout...
    # What the engine's search is told in the container: fan out to this app, this Volume.
    from mltrainer.tools.runtimes.modal_remote import fanout_env

    assert fanout_env(job.job_id) == {
        "MLTRAINER_FANOUT": "modal",
        "MLTRAINER_FANOUT_APP": built.app.name,
        "MLTRAINER_FANOUT_VOLUME": "mltrainer-job-0123456789ab",
    }
    assert fake_modal.calls() == []  # building needed nothing of the client


def test_a_fanned_out_engine_job_is_priced_and_limited_with_its_own_container(
    modal_settings: Settings, fake_modal: FakeModal, tmp_path: Path
) -> None:
    """parallel=N on the engine: N trial containers beside the one running the search, so the
    estimate (the most it can cost) counts N + 1 and so does Modal's concurrency limit; a
    script's parallel is its own containers."""
    from mltrainer.tools.runtimes.base import RemoteSpec
    from mltrainer.tools.runtimes.catalogue import catalogue
    from mltrainer.tools.runtimes.modal import containers, estimate

    modal = catalogue().provider("modal")

    def spec(kind: str, parallel: int, gpu: str | None = None) -> RemoteSpec:
        resources = Resources(gpu=gpu, timeout_s=3000, parallel=parallel)
        return RemoteSpec(
            job_id="job_x", kind=kind, run_dir=tmp_path, entry="train.py", resources=resources
        )

    assert containers(spec("engine", 1)) == 1 and containers(spec("script", 3)) == 3
    assert containers(spec("engine", 3)) == 4
    one, four = estimate(spec("engine", 1), modal), estimate(spec("engine", 3), modal)
    assert four.usd == pytest.approx(4 * one.usd, abs=1e-3)
    assert "× 4 containers (3 for the search's trials + the engine's)" in four.basis
    assert estimate(spec("script", 3), modal).basis.endswith("× 3 containers")
    from mltrainer.state.secrets import SecretVault
    from mltrainer.tools.runtimes.modal import ModalRuntime

    modal_settings.ensure_dirs()
    runtime = ModalRuntime.connect(modal_settings, SecretVault.for_settings(modal_settings))
    assert runtime.validate(spec("engine", 9, gpu="T4")) == []  # 10 GPU containers at most
    (problem,) = runtime.validate(spec("engine", 10, gpu="T4"))
    assert problem.field == "parallel" and "the engine's own container included" in problem.message
    assert runtime.validate(spec("script", 10, gpu="T4")) == []
    assert fake_modal.calls() == []


@pytest.mark.slow
@pytest.mark.anyio
async def test_train_model_on_modal_with_parallel_2_ends_with_a_model_predict_uses(
    modal_settings: Settings, fake_modal: FakeModal, churn_csv: Path
) -> None:
    async with connect("memory", modal_settings) as client:
        result = await train_until_done(
            client,
            {"dataset": str(churn_csv), "target": "label", "runtime": "modal", "parallel": 2},
        )
        job = payload(result)
        assert job["status"] == "succeeded", job["error"]
        assert job["runtime"] == "modal" and job["remote"]["remote_id"].startswith("fc-")
        decisions = [(d["stage"], d["decision"]) for d in job["result"]["decisions"]]
        assert FANNED_OUT in decisions  # the "container" ran its search two trials at a time
        basis = job["preflight"]["estimate"]["basis"]
        assert "× 3 containers (2 for the search's trials + the engine's)" in basis
        predicted = payload(
            await client.call_tool("predict", {"model": job["model_id"], "dataset": str(churn_csv)})
        )
        assert predicted["n_rows"] == 400
    (spawned,) = fake_modal.calls("spawn")
    assert spawned["job"]["parallel"] == 2


def test_kaggle_refuses_parallel_above_one_and_sends_nothing(kg: KaggleEnv, tmp_path: Path) -> None:
    from mltrainer.state.errors import InvalidInput

    spec = make_spec(tmp_path, resources=Resources(timeout_s=600, parallel=2))
    found = {p.field: p.message for p in kg.runtime.validate(spec)}
    assert list(found) == ["resources.parallel"]
    assert (
        "parallel=2: a Kaggle kernel is one session on one machine" in found["resources.parallel"]
    )
    with pytest.raises(InvalidInput, match=r"Kaggle would refuse this run: resources\.parallel"):
        kg.runtime.submit(spec)
    assert kg.fake.requests == []


@pytest.fixture
def kaggle(kaggle_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKaggle]:
    monkeypatch.setenv("KAGGLE_USERNAME", USERNAME)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    with start_kaggle() as fake:
        yield fake


@pytest.mark.anyio
async def test_train_model_on_kaggle_with_parallel_is_a_clear_error_before_any_push(
    kaggle_home: Path, kaggle: FakeKaggle, churn_csv: Path
) -> None:
    settings = Settings(home=kaggle_home, kaggle_api_endpoint=kaggle.url, allow_loopback_http=True)
    async with connect("memory", settings) as client:
        result = await client.call_tool(
            "train_model",
            {"dataset": str(churn_csv), "target": "label", "runtime": "kaggle", "parallel": 2},
        )
        text = error_text(result)
        assert "parallel=2: a Kaggle kernel is one session on one machine" in text, text
        assert "runtime='modal'" in text
        listed = payload(await client.call_tool("list_jobs", {}))  # still serving
        assert listed["count"] == 0
    assert not any("push" in r.path for r in kaggle.requests), [r.path for r in kaggle.requests]


def test_a_trial_container_reads_the_problem_once_and_evaluates_as_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_trial's body, without Modal: the Problem uploaded once to the Volume is read after
    one reload, kept for the container's next trials, and a trial's outcome is what this
    process would compute; a deadline (epoch seconds) already past gives no candidate."""
    import pickle
    import time

    from mltrainer.tools.training.engine import fanout
    from mltrainer.tools.training.engine.fanout import PROBLEM_FILE, InProcess, Trial
    from tests.fanout_fixtures import problem_of

    monkeypatch.setattr(fanout, "_WORKER", {})  # a fresh container
    problem = problem_of()
    (tmp_path / PROBLEM_FILE).parent.mkdir(parents=True)
    (tmp_path / PROBLEM_FILE).write_bytes(pickle.dumps(problem))
    reloads: list[int] = []
    trial = Trial("linear", {"C": 1.0}, keep_models=False)
    try:
        first = fanout.trial_in_container(
            tmp_path, trial, time.time() + 600, lambda: reloads.append(1)
        )
        (tmp_path / PROBLEM_FILE).unlink()  # kept in memory: not read again
        late = fanout.trial_in_container(
            tmp_path, trial, time.time() - 1, lambda: reloads.append(1)
        )
    finally:
        fanout._WORKER["limits"].restore_original_limits()
    (here,) = InProcess(problem).evaluate([trial], time.monotonic() + 600)
    assert reloads == [1]
    assert first.candidate is not None and here.candidate is not None
    assert first.candidate.cv_mean == here.candidate.cv_mean
    assert late.candidate is None and late.error is None  # cut by the deadline, not failed

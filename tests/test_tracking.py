"""MLflow tracking against real MLflow stores (SQLite, file) and a local `mlflow server`: a job
trained through the real server is logged, read back with MLflow's client, its model loaded by
MLflow (without this project) and predicting like the predict tool; no secret reaches MLflow."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pandas as pd
import pytest
from conftest import (
    connect,
    free_port,
    payload,
    train_until_done,
    write_classification_csv,
)

from mltrainer.state.masking import Masker
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.tracking import log_job

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command

try:
    import mlflow
    from mlflow import MlflowClient
except ImportError:
    if os.environ.get("MLTRAINER_REQUIRE_EXTRAS") == "1":
        raise ImportError(
            "MLTRAINER_REQUIRE_EXTRAS=1 but mlflow is missing: pip install -e '.[tracking]'"
        ) from None
    pytest.skip(
        "mlflow is not installed (the optional 'tracking' extra): pip install -e '.[tracking]'",
        allow_module_level=True,
    )

CANARY = "mlt-canary-Xk93jQ0pZr"
FEATURES = ["x1", "x2", "colour"]
SERVER_START_S = 240  # the machine is shared and loaded: generous, but bounded


@pytest.fixture(autouse=True)
def own_import_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """``mlflow.pyfunc.load_model`` puts a model's code folder (a copy of the project modules
    it needs, under ``mltrainer/``) first on ``sys.path`` for good: the tests that load one in
    this process leave the path as they found it, or a later test's spawned processes would
    import the project from that partial copy."""
    monkeypatch.setattr(sys, "path", list(sys.path))


@dataclass
class Trained:
    settings: Settings
    folder: Path
    model_id: str
    estimator: Any
    new_rows: pd.DataFrame
    predictions: list[str]  # what the predict tool answered for new_rows
    sha256: str


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A model trained by a job through the real server, its artifacts then tampered with: a
    secret written raw into the card, the leaderboard and a plot, as an unmasked artifact
    would carry it."""
    from mltrainer.tools.training.model import load_record

    home = tmp_path_factory.mktemp("tracking") / "home"
    settings = Settings(home=home)
    settings.ensure_dirs()
    SecretVault(settings.secrets_path).set("CANARY_TOKEN", CANARY, hosts=["api.example.com"])
    local = settings.datasets_dir / "local"  # the part of the state directory tools may read
    local.mkdir()
    data = write_classification_csv(local / "churn.csv")
    new_rows = pd.read_csv(data).head(25)[FEATURES]
    new_rows.to_csv(local / "new.csv", index=False)

    async def train_and_predict() -> tuple[dict[str, Any], dict[str, Any]]:
        async with connect("memory", settings) as client:
            arguments = {"dataset": str(data), "target": "label", "time_budget_s": 10}
            job = payload(
                await train_until_done(client, arguments | {"plots": False, "instructions": CANARY})
            )
            assert job["status"] == "succeeded", job
            out = payload(
                await client.call_tool(
                    "predict", {"model": job["model_id"], "dataset": str(local / "new.csv")}
                )
            )
            return job, out

    job, out = anyio.run(train_and_predict)
    store = Store(settings.db_path)
    record = store.get_model(job["model_id"])
    folder = Path(record.path)
    estimator = load_record(record, store).estimator
    store.close()
    with open(folder / "README.md", "a") as card:
        card.write(f"\n\nContact: {CANARY}\n")
    board = json.loads((folder / "leaderboard.json").read_text())
    board[0]["params"]["note"] = CANARY
    (folder / "leaderboard.json").write_text(json.dumps(board))
    (folder / "leaked.png").write_bytes(b"\x89PNG\r\n\x1a\n" + CANARY.encode())
    manifest = json.loads((folder / "manifest.json").read_text())
    return Trained(
        settings=settings,
        folder=folder,
        model_id=job["model_id"],
        estimator=estimator,
        new_rows=new_rows,
        predictions=pd.read_csv(out["predictions_path"])["prediction"].astype(str).tolist(),
        sha256=manifest["data"]["sha256"],
    )


def tracked(trained: Trained, uri: str, **fields: Any) -> Settings:
    return trained.settings.model_copy(update={"mlflow_tracking_uri": uri, **fields})


def masker(trained: Trained) -> Masker:
    return SecretVault(trained.settings.secrets_path).masker()


def assert_no_secret_under(path: Path) -> None:
    """Not the canary, nor any encoded form the masker knows, in any file (or archive member)."""
    from mltrainer.tools.tracking.mlflow_model import files_with_secrets

    files = [p for p in path.rglob("*") if p.is_file()]
    assert files
    assert files_with_secrets(path, Masker({"CANARY": CANARY})) == []


def assert_run_read_back(client: Any, result: Any, trained: Trained) -> None:
    run = client.get_run(result.run_id)
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["request.target"] == "label" and params["request.time_budget_s"] == "10"
    assert params["plan.task"] == "binary" and params["plan.metric"] == "roc_auc"
    assert json.loads(params["plan.features"]) == FEATURES
    assert CANARY not in params["request.instructions"]
    assert "***CANARY_TOKEN***" in params["request.instructions"]
    assert {"cv_roc_auc", "cv_roc_auc_std", "holdout_roc_auc", "holdout_accuracy"} <= set(metrics)
    assert 0.6 < metrics["holdout_roc_auc"] <= 1
    assert tags["mltrainer.task"] == "binary"
    assert tags["mltrainer.model_id"] == trained.model_id
    assert tags["mltrainer.dataset_sha256"] == trained.sha256
    assert run.info.status == "FINISHED" and trained.model_id in run.info.run_name
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    plots = {p.name for p in trained.folder.glob("*.png")} - {"leaked.png"}
    assert plots and plots <= artifacts
    assert {"README.md", "metrics.json", "plan.json", "manifest.json", "leaderboard.json"} <= (
        artifacts
    )
    assert "leaked.png" not in artifacts
    assert any("leaked.png" in w for w in result.warnings)
    board = json.loads(
        Path(client.download_artifacts(result.run_id, "leaderboard.json")).read_text()
    )
    assert {"name", "family", "cv_mean"} <= set(board["columns"]) and board["data"]
    card = Path(client.download_artifacts(result.run_id, "README.md")).read_text()
    assert CANARY not in card and "***CANARY_TOKEN***" in card


def assert_model_predicts_like_the_tool(result: Any, trained: Trained) -> None:
    loaded = mlflow.pyfunc.load_model(result.model_uri)
    predicted = [str(v) for v in loaded.predict(trained.new_rows)]
    assert predicted == trained.predictions


def test_a_job_logged_to_sqlite_reads_back_and_its_model_predicts_like_the_tool(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    result = log_job(trained.folder, trained.estimator, tracked(trained, uri), masker(trained))
    assert result.status == "logged", result
    assert result.experiment == "mltrainer/local/churn.csv"  # its folder in the cache
    assert result.model_uri and result.model_uri.startswith("models:/")
    client = MlflowClient(uri)
    assert_run_read_back(client, result, trained)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    model = client.get_logged_model(result.model_uri.removeprefix("models:/"))
    assert model.source_run_id == result.run_id and model.status == "READY"
    assert_model_predicts_like_the_tool(result, trained)
    assert (tmp_path / "store" / "mlartifacts").is_dir()  # beside the database, not in the cwd
    assert_no_secret_under(tmp_path / "store")

    again = log_job(trained.folder, trained.estimator, tracked(trained, uri), masker(trained))
    assert again.status == "logged" and again.experiment_id == result.experiment_id
    assert again.run_id != result.run_id


# Loads the logged model in a fresh interpreter where any module of this project must come from
# the model's own code folder: the installed project is out of reach.
ISOLATED_LOAD = textwrap.dedent(
    """
    import importlib.machinery, json, sys

    class OnlyTheModelsCode:
        def find_spec(self, name, path=None, target=None):
            if name != "mltrainer" and not name.startswith("mltrainer."):
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            places = [spec.origin or ""] + list(spec.submodule_search_locations or []) if spec else []
            if spec and all("/code/mltrainer" in p for p in places if p):
                return spec
            raise ModuleNotFoundError(name + " is not in the model's code folder")

    sys.meta_path.insert(0, OnlyTheModelsCode())
    import mlflow, pandas as pd
    model = mlflow.pyfunc.load_model(sys.argv[1])
    rows = pd.read_csv(sys.argv[2])
    custom = sys.modules.get("mltrainer.tools.training.engine.custom")
    print(json.dumps({
        "predictions": [str(v) for v in model.predict(rows)],
        "custom": getattr(custom, "__file__", None),
    }))
    """
)


def test_a_file_store_run_and_its_model_load_without_this_project(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = (tmp_path / "mlruns").as_uri()
    result = log_job(trained.folder, trained.estimator, tracked(trained, uri), masker(trained))
    assert result.status == "logged", result
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert_run_read_back(MlflowClient(uri), result, trained)
    assert_no_secret_under(tmp_path / "mlruns")

    trained.new_rows.to_csv(tmp_path / "rows.csv", index=False)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_ALLOW_FILE_STORE": "true"}
    out = subprocess.run(
        [sys.executable, "-P", "-c", ISOLATED_LOAD, result.model_uri, str(tmp_path / "rows.csv")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["predictions"] == trained.predictions
    meta = json.loads((trained.folder / "meta.json").read_text())
    assert any(t.startswith("mltrainer.") for t in meta["trusted_types"])  # it needs our code
    assert "/code/mltrainer/tools/training/engine/custom/__init__.py" in loaded["custom"]


@contextmanager
def mlflow_process(arguments: list[str], url: str, ready: str, log: Path) -> Iterator[None]:
    """``mlflow <arguments>`` in its own process group, until ``url + ready`` answers (bounded);
    stopped with every process it started."""
    import httpx

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with open(log, "wb") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", *arguments],
            cwd=log.parent,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow exited ({proc.returncode}): {log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + ready, timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"mlflow did not answer in {SERVER_START_S} s: {log.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)


def test_a_job_is_logged_to_a_local_mlflow_server(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    arguments = ["server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    arguments += ["--backend-store-uri", f"sqlite:///{tmp_path}/server.db"]
    arguments += ["--artifacts-destination", str(tmp_path / "served-artifacts")]
    with mlflow_process(arguments, url, "/health", tmp_path / "server.log"):
        result = log_job(trained.folder, trained.estimator, tracked(trained, url), masker(trained))
        assert result.status == "logged", result
        assert result.tracking_uri == url
        assert_run_read_back(MlflowClient(url), result, trained)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        assert_model_predicts_like_the_tool(result, trained)
    assert_no_secret_under(tmp_path / "served-artifacts")
    assert CANARY.encode() not in (tmp_path / "server.db").read_bytes()


def test_mlflow_models_serve_answers_like_the_predict_tool(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = log_job(trained.folder, trained.estimator, tracked(trained, uri), masker(trained))
    assert result.status == "logged" and result.model_uri, result
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    port = free_port()
    arguments = ["models", "serve", "-m", result.model_uri, "--env-manager", "local"]
    arguments += ["-h", "127.0.0.1", "-p", str(port)]
    url = f"http://127.0.0.1:{port}"
    rows = json.loads(trained.new_rows.to_json(orient="split", index=False))
    with mlflow_process(arguments, url, "/ping", tmp_path / "serve.log"):
        answer = httpx.post(f"{url}/invocations", json={"dataframe_split": rows}, timeout=120)
    assert answer.status_code == 200, answer.text
    assert [str(v) for v in answer.json()["predictions"]] == trained.predictions


def test_an_unreachable_server_is_a_warning_not_a_failure(trained: Trained) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    settings = tracked(trained, url, mlflow_max_retries=0, mlflow_timeout_s=5)
    result = log_job(trained.folder, trained.estimator, settings, masker(trained))
    assert result.status == "failed" and result.run_id is None
    assert result.message and result.message.startswith("Logging to MLflow failed")
    assert result.job_warnings() == [result.message]
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


def test_a_deleted_experiment_is_a_clear_warning(trained: Trained, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    client.delete_experiment(client.create_experiment("gone"))
    settings = tracked(trained, uri, mlflow_experiment="gone")
    result = log_job(trained.folder, trained.estimator, settings, masker(trained))
    assert result.status == "failed" and "'gone' is deleted" in (result.message or "")
    assert "MLTRAINER_MLFLOW_EXPERIMENT" in (result.message or "")


def test_a_model_holding_a_secret_is_not_logged(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    from mltrainer.tools.training.model import ModelMeta, save_model

    model = LogisticRegression().fit(
        [[0.0], [1.0], [2.0], [3.0]], ["plain", "plain", CANARY, CANARY]
    )
    folder = tmp_path / "model_s"
    save_model(
        folder,
        model,
        ModelMeta(model_id="model_s", task="binary", target="y", features=["x"], metric="roc_auc"),
        Masker(),
    )
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    settings = Settings(home=tmp_path / "home", mlflow_tracking_uri=uri)
    result = log_job(folder, model, settings, Masker({"CANARY": CANARY}))
    assert result.status == "logged" and result.model_uri is None
    assert any("model was not logged" in w and "model.skops" in w for w in result.warnings)
    assert_no_secret_under(tmp_path / "store")
    run = MlflowClient(uri).get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["mltrainer.model_id"] == "model_s"


def test_a_bare_xgboost_model_is_logged_with_the_xgboost_flavour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import skops.io
    import xgboost

    from mltrainer.tools.training.model import META_FILE, MODEL_FILE, ModelMeta

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = (X["a"] + X["b"] > 0).astype(int)
    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(X, y)
    folder = tmp_path / "model_x"
    folder.mkdir()
    # The engine wraps XGBoost in its own estimator; a bare booster is written by hand here.
    skops.io.dump(model, folder / MODEL_FILE)
    meta = ModelMeta(
        model_id="model_x", task="binary", target="y", features=["a", "b"], metric="roc_auc"
    )
    (folder / META_FILE).write_text(meta.model_dump_json())
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = log_job(
        folder, model, Settings(home=tmp_path / "home", mlflow_tracking_uri=uri), Masker()
    )
    assert result.status == "logged" and result.model_uri, result
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    info = mlflow.models.get_model_info(result.model_uri)
    assert "xgboost" in info.flavors and "sklearn" not in info.flavors
    loaded = mlflow.pyfunc.load_model(result.model_uri)
    np.testing.assert_array_equal(np.asarray(loaded.predict(X)), model.predict(X))

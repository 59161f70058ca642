"""``log_job``: a finished training job becomes an MLflow run, if tracking is on.

Off unless ``MLTRAINER_MLFLOW_TRACKING_URI`` is set. Everything goes through one
``MlflowClient`` bound to that URI (no global MLflow state), and everything sent passes the
masker first (``record.py``, ``mlflow_model.py``). Tracking must never fail a job: any failure
comes back as ``status="failed"`` with a message the job records as a warning.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from mltrainer.state.errors import InvalidInput
from mltrainer.state.files import private_dir, write_bytes, write_text
from mltrainer.state.masking import Masker
from mltrainer.state.settings import Settings
from mltrainer.tools.tracking.mlflow_model import (
    files_with_secrets,
    holds_secret,
    save_mlflow_model,
)
from mltrainer.tools.tracking.record import RunContent, run_content

INSTALL_HINT = "pip install 'mltrainer-mcp[tracking]'"
BATCH = 100  # MLflow accepts at most 100 parameters per batch
_USERINFO = re.compile(r"(?<=://)[^/@]*@")
# MLflow reads its HTTP timeout and retries from the environment; they are set around each
# logging call (one at a time in a process) and restored after.
_environment_lock = threading.Lock()


class TrackingResult(BaseModel):
    status: Literal["disabled", "logged", "failed"]
    tracking_uri: str | None = Field(default=None, description="Without credentials.")
    experiment: str | None = None
    experiment_id: str | None = None
    run_id: str | None = None
    model_uri: str | None = Field(
        default=None, description="models:/<id>, for mlflow.pyfunc.load_model or serving."
    )
    warnings: list[str] = Field(default_factory=list)
    message: str | None = None

    def job_warnings(self) -> list[str]:
        """What the job should record as warnings (a failure never fails the job)."""
        return [
            *self.warnings,
            *([self.message] if self.status == "failed" and self.message else []),
        ]


def log_job(folder: Path, estimator: Any, settings: Settings, masker: Masker) -> TrackingResult:
    """Log the model saved in ``folder`` (fitted ``estimator``) as an MLflow run."""
    uri = settings.mlflow_tracking_uri
    if not uri:
        return TrackingResult(status="disabled")
    shown = masker.mask(_USERINFO.sub("", uri))
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return TrackingResult(
            status="failed",
            tracking_uri=shown,
            message="MLTRAINER_MLFLOW_TRACKING_URI is set but MLflow is not installed: "
            f"{INSTALL_HINT}. The job was not logged.",
        )
    try:
        content = run_content(folder, settings, masker)
        with _mlflow_environment(settings, uri):
            result = _log(uri, content, folder, estimator, settings, masker)
    except Exception as error:  # any failure of tracking becomes the job's warning, never its end
        detail = masker.mask(f"{type(error).__name__}: {error}")[:2000]
        return TrackingResult(
            status="failed", tracking_uri=shown, message=f"Logging to MLflow failed: {detail}"
        )
    return result.model_copy(update={"tracking_uri": shown})


def _log(
    uri: str, content: RunContent, folder: Path, estimator: Any, settings: Settings, masker: Masker
) -> TrackingResult:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    database = _sqlite_file(uri)
    if database is not None:
        private_dir(database.parent)  # SQLite creates the file, not its folder
    client = MlflowClient(tracking_uri=uri)
    experiment_id = _experiment(client, content.experiment, uri, settings)
    run = client.create_run(experiment_id, run_name=content.run_name, tags=content.tags)
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        params = [Param(k, v) for k, v in content.params.items()]
        for start in range(0, max(len(params), 1), BATCH):
            metrics = (
                [Metric(k, v, now, 0) for k, v in content.metrics.items()] if not start else []
            )
            client.log_batch(run_id, metrics=metrics, params=params[start : start + BATCH])
        if content.leaderboard:
            client.log_table(
                run_id, data=_columns(content.leaderboard), artifact_file="leaderboard.json"
            )
        warnings = _log_files(client, run_id, content, folder, masker)
        model_id = _log_model(client, experiment_id, run_id, estimator, content, masker, warnings)
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        with contextlib.suppress(Exception):  # the original error is the one to report
            client.set_terminated(run_id, "FAILED")
        raise
    return TrackingResult(
        status="logged",
        experiment=content.experiment,
        experiment_id=experiment_id,
        run_id=run_id,
        model_uri=f"models:/{model_id}" if model_id else None,
        warnings=warnings,
    )


def _experiment(client: Any, name: str, uri: str, settings: Settings) -> str:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return str(client.create_experiment(name, artifact_location=_artifacts(uri, settings)))
        except MlflowException:  # another job created it meanwhile
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        raise InvalidInput(
            f"The MLflow experiment '{name}' is deleted.",
            next_step="Restore it in MLflow, or set MLTRAINER_MLFLOW_EXPERIMENT to another name.",
        )
    return str(found.experiment_id)


def _artifacts(uri: str, settings: Settings) -> str | None:
    """Artifacts of a new experiment: as configured, else beside a sqlite database (MLflow's own
    default is ./mlruns under whatever directory the server was started from)."""
    if settings.mlflow_artifact_location:
        return settings.mlflow_artifact_location
    database = _sqlite_file(uri)
    return (database.parent / "mlartifacts").as_uri() if database is not None else None


def _sqlite_file(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///") or ":memory:" in uri:
        return None
    return Path(uri[len("sqlite:///") :].split("?")[0]).resolve()


def _columns(rows: list[dict[str, str | float]]) -> dict[str, list[str | float | None]]:
    names = list(dict.fromkeys(key for row in rows for key in row))
    return {name: [row.get(name) for row in rows] for name in names}


def _log_files(
    client: Any, run_id: str, content: RunContent, folder: Path, masker: Masker
) -> list[str]:
    """Text artifacts masked, binary ones only without a secret; returns what was held back."""
    held_back = []
    with tempfile.TemporaryDirectory(prefix="mltrainer-mlflow-") as staging:
        for name in content.text_files:
            write_text(Path(staging) / name, (folder / name).read_text(), masker)
        for name in content.binary_files:
            data = (folder / name).read_bytes()
            if holds_secret(data, masker):
                held_back.append(f"{name} was not logged to MLflow: it holds a secret's value.")
            else:
                write_bytes(Path(staging) / name, data)
        client.log_artifacts(run_id, staging)
    return held_back


def _log_model(
    client: Any,
    experiment_id: str,
    run_id: str,
    estimator: Any,
    content: RunContent,
    masker: Masker,
    warnings: list[str],
) -> str | None:
    from mlflow.entities import LoggedModelOutput
    from mlflow.models import Model

    logged = client.create_logged_model(
        experiment_id, name="model", source_run_id=run_id, tags=content.tags
    )
    ready = False
    try:
        with tempfile.TemporaryDirectory(prefix="mltrainer-mlflow-model-") as staging:
            path = Path(staging) / "model"
            mlflow_model = Model(
                artifact_path=logged.artifact_location,
                model_uuid=logged.model_id,
                run_id=run_id,
                model_id=logged.model_id,
            )
            save_mlflow_model(estimator, path, mlflow_model, content.model, Path(staging) / "code")
            leaked = files_with_secrets(path, masker)
            if leaked:
                warnings.append(
                    f"The model was not logged to MLflow: {', '.join(leaked)} would carry a "
                    "secret's value (e.g. a class label or category equal to a secret)."
                )
                return None
            client.log_model_artifacts(logged.model_id, str(path))
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        ready = True
    finally:
        with contextlib.suppress(Exception):
            client.finalize_logged_model(logged.model_id, "READY" if ready else "FAILED")
    return str(logged.model_id)


@contextlib.contextmanager
def _mlflow_environment(settings: Settings, uri: str) -> Iterator[None]:
    values = {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, round(settings.mlflow_timeout_s))),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(settings.mlflow_max_retries),
    }
    if uri.startswith("file:") or "://" not in uri:
        # MLflow 3 refuses file stores unless asked; naming one in the settings is asking.
        values["MLFLOW_ALLOW_FILE_STORE"] = "true"
    with _environment_lock:
        saved = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

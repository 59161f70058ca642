"""Tracking without MLflow installed: off by default, a clear warning when asked for but missing,
and the run's content (parameters, metrics, tags, files) read from a model folder and masked."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np

from mltrainer.state.masking import Masker
from mltrainer.state.settings import Settings
from mltrainer.tools.tracking import log_job, run_content
from mltrainer.tools.tracking.mlflow_model import files_with_secrets, holds_secret
from mltrainer.tools.tracking.record import MAX_PARAM_CHARS

CANARY = "mlt-canary-Rr51kPq8Zx"


def model_folder(path: Path) -> Path:
    """A model folder as a finished job leaves it (the files the run reads)."""
    from sklearn.linear_model import LogisticRegression

    from mltrainer.tools.training.model import ModelMeta, save_model

    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], ["no", "no", "yes", "yes"])
    save_model(
        path,
        model,
        ModelMeta(
            model_id="model_r",
            job_id="job_r",
            task="binary",
            target="label",
            features=["x"],
            metric="roc_auc",
            name="linear",
        ),
        Masker(),
    )
    metrics = {"task": "binary", "metric": "roc_auc", "cv_mean": 0.91, "cv_std": 0.02}
    metrics["holdout"] = {"roc_auc": 0.9, "accuracy": 0.8, "log_loss": float("nan")}
    (path / "metrics.json").write_text(json.dumps(metrics))
    plan = {
        "task": "binary",
        "metric": "roc_auc",
        "n_rows": 4,
        "columns": [{"name": "x", "kind": "numeric"}],
        "validation": {"kind": "stratified_kfold", "n_splits": 5, "test_fraction": 0.2},
        "families": [{"name": "linear"}, {"name": "knn"}],
        "time": {"total_s": 10},
        "decisions": [{"stage": "x", "decision": CANARY, "reason": "r"}],
    }
    (path / "plan.json").write_text(json.dumps(plan))
    request = {"dataset": "/data/churn.csv", "target": "label", "instructions": f"use {CANARY}"}
    request["exclude_columns"] = ["a" * 7000]
    manifest = {
        "request": request,
        "data": {"path": "/data/churn.csv", "sha256": "ab12", "rows": 4},
    }
    (path / "manifest.json").write_text(json.dumps(manifest | {"search_stopped": "converged"}))
    board = [{"name": "linear#1", "family": "linear", "params": {"C": 1.0}, "cv_mean": 0.91}]
    (path / "leaderboard.json").write_text(json.dumps(board))
    (path / "README.md").write_text(f"# card\n{CANARY}\n")
    (path / "roc.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return path


def test_tracking_is_off_unless_a_tracking_uri_is_set(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "model_r")
    result = log_job(folder, None, Settings(home=tmp_path / "home"), Masker())
    assert result.status == "disabled" and result.job_warnings() == []


def test_without_mlflow_installed_the_job_gets_a_warning_with_the_install_command(
    tmp_path: Path,
) -> None:
    folder = model_folder(tmp_path / "model_r")
    script = textwrap.dedent(
        """
        import sys
        sys.modules["mlflow"] = None  # as if the 'tracking' extra were not installed
        from pathlib import Path
        from mltrainer.state.masking import Masker
        from mltrainer.state.settings import Settings
        from mltrainer.tools.tracking import log_job
        settings = Settings(home=Path(sys.argv[2]), mlflow_tracking_uri="sqlite:///x.db")
        print(log_job(Path(sys.argv[1]), None, settings, Masker()).model_dump_json())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(folder), str(tmp_path / "home")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "failed"
    assert "pip install 'mltrainer-mcp[tracking]'" in result["message"]
    assert not (tmp_path / "x.db").exists()


def test_the_run_holds_request_plan_scores_and_tags_all_masked(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "model_r")
    settings = Settings(home=tmp_path / "home")
    content = run_content(folder, settings, Masker({"CANARY": CANARY}))
    assert content.experiment == "mltrainer/churn.csv"
    assert content.run_name == "linear model_r"
    params = content.params
    assert params["request.target"] == "label" and params["plan.task"] == "binary"
    assert params["plan.validation.kind"] == "stratified_kfold"
    assert json.loads(params["plan.families"]) == ["linear", "knn"]
    assert params["plan.time_budget_s"] == "10" and params["data.rows"] == "4"
    assert params["request.instructions"] == "use ***CANARY***"
    assert len(params["request.exclude_columns"]) == MAX_PARAM_CHARS
    assert content.metrics == {
        "cv_roc_auc": 0.91,
        "cv_roc_auc_std": 0.02,
        "holdout_roc_auc": 0.9,
        "holdout_accuracy": 0.8,
    }  # the NaN log loss is left out
    assert content.tags["mltrainer.dataset_sha256"] == "ab12"
    assert content.tags["mltrainer.task"] == "binary"
    assert content.tags["mltrainer.model_id"] == "model_r"
    assert content.tags["mltrainer.search_stopped"] == "converged"
    assert content.leaderboard == [
        {"name": "linear#1", "family": "linear", "params": '{"C": 1.0}', "cv_mean": 0.91}
    ]
    assert set(content.text_files) >= {"meta.json", "plan.json", "README.md", "manifest.json"}
    assert content.binary_files == ["roc.png"]
    assert CANARY not in content.model_dump_json()

    cached = settings.datasets_dir / "ds_1" / "train.csv"
    named = settings.model_copy(update={"mlflow_experiment": f"team {CANARY}"})
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["data"]["path"] = str(cached)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert run_content(folder, settings, Masker()).experiment == "mltrainer/ds_1/train.csv"
    masked = run_content(folder, named, Masker({"CANARY": CANARY})).experiment
    assert masked == "team ***CANARY***"


def test_secrets_are_found_in_binary_files_in_any_width_and_inside_archives(
    tmp_path: Path,
) -> None:
    masker = Masker({"CANARY": CANARY})
    assert holds_secret(b"\x00\x01" + CANARY.encode() + b"\xff", masker)
    assert holds_secret(np.array([CANARY]).tobytes(), masker)  # numpy's UTF-32
    assert holds_secret(CANARY.encode("utf-16-le"), masker)
    assert not holds_secret(b"\x89PNG plain bytes", masker)
    with zipfile.ZipFile(tmp_path / "model.skops", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", json.dumps({"classes": [CANARY] * 50}))
    (tmp_path / "clean.txt").write_text("nothing here")
    assert files_with_secrets(tmp_path, masker) == ["model.skops"]

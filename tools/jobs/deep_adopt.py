"""What a deep-learning run sent back, taken in as a local model: ``models/<model_id>/``.

The folder is checked as anything that arrives from outside: plain files only (no links),
weights as safetensors only (a pickled ``.bin``/``.pt`` would run code when loaded), the
files every template writes, and the task and label set the job sent (``mltrainer_run.json``).
Text files are masked; then a ``ModelRecord`` (``summary.kind = 'deep'``) and an artifact per
file make it usable by ``predict`` here like any other model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from mltrainer.state.errors import RemoteServiceError, UntrustedModel
from mltrainer.state.files import private_dir
from mltrainer.state.models import ModelRecord
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.jobs.deep import EXPECTED, DeepRun, read_run
from mltrainer.tools.runtimes.adopt import add_artifact
from mltrainer.tools.runtimes.files import mask_text_files
from mltrainer.tools.training.outcome import TrainOutcome
from mltrainer.tools.training.plan import Decision
from mltrainer.tools.training.results import LeaderboardEntry

DEEP_KIND = "deep"
PICKLED = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz")
KINDS = {
    "model.safetensors": "model",
    "metrics.json": "metrics",
    "plan.json": "plan",
    "README.md": "card",
}


def adopt_deep_model(
    fetched: Path, run_dir: Path, settings: Settings, store: Store, job_id: str
) -> TrainOutcome:
    """Register the model folder a deep run sent back; the job's result."""
    run = read_run(run_dir)
    source, folder = fetched, settings.models_dir / run.model_id
    if not (source / "metrics.json").exists() and (folder / "metrics.json").is_file():
        source = folder  # moved there by an attempt that died before recording it
    metrics = _checked(source, run)
    mask_text_files(source, store.masker)
    shutil.copyfile(run_dir / "plan.json", source / "plan.json")
    if source != folder:
        private_dir(folder.parent)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.move(str(source), str(folder))
    test = {k: float(v) for k, v in (metrics.get("test") or {}).items()}
    store.save_model(
        ModelRecord(
            id=run.model_id,
            job_id=job_id,
            task=run.task,
            target=run.target,
            metric=run.metric,
            score=test.get(run.metric),
            path=str(folder),
            classes=run.labels or None,
            summary={"kind": DEEP_KIND, "name": run.backbone, "dry_run": metrics.get("dry_run")},
        )
    )
    for path in sorted(folder.iterdir()):
        kind = "plot" if path.suffix == ".png" else KINDS.get(path.name)
        if kind is not None:
            add_artifact(store, job_id, path, kind, model_id=run.model_id)
    return _outcome(run, metrics, test, folder, run_dir)


def _checked(source: Path, run: DeepRun) -> dict[str, Any]:
    if not source.is_dir() or source.is_symlink():
        raise RemoteServiceError("The run sent back no model folder.")
    for path in source.rglob("*"):
        if path.is_symlink():
            raise UntrustedModel(f"The run sent back a link ({path.name}); nothing was registered.")
        if path.suffix.lower() in PICKLED:
            raise UntrustedModel(
                f"The run sent back {path.name}, a pickled file that would run code when loaded; "
                "only safetensors weights are taken in. Nothing was registered.",
                next_step="Start the job again (the templates save safetensors only).",
            )
    missing = [name for name in EXPECTED if not (source / name).is_file()]
    if missing:
        raise RemoteServiceError(
            f"The run's model folder lacks {', '.join(missing)}.",
            next_step="Read the job's log for what the run printed last, and start it again.",
        )
    try:
        metrics = json.loads((source / "metrics.json").read_text("utf-8"))
    except ValueError as exc:
        raise RemoteServiceError(f"The run's metrics.json is not JSON: {exc}") from exc
    labels = [str(label) for label in metrics.get("labels") or []]
    if metrics.get("task") != run.task or labels != run.labels:
        raise UntrustedModel(
            f"The run sent back a {metrics.get('task')!r} model with labels {labels[:10]}, not "
            f"the {run.task!r} model with labels {run.labels[:10]} it was given.",
            next_step="Nothing was registered; start the job again.",
        )
    return dict(metrics)


def _outcome(
    run: DeepRun, metrics: dict[str, Any], test: dict[str, float], folder: Path, run_dir: Path
) -> TrainOutcome:
    plan = json.loads((run_dir / "plan.json").read_text("utf-8"))
    decisions = [Decision.model_validate(d) for d in plan.get("decisions", [])]
    warnings = []
    if metrics.get("dry_run"):
        warnings.append(
            "This model came from a dry run (a tiny randomly initialised network trained for "
            "a few steps): its predictions mean nothing."
        )
    validation = metrics.get("validation") or {}
    entry = LeaderboardEntry(
        name=run.backbone,
        family=str(plan.get("family", "")),
        params={k: plan.get(k) for k in ("learning_rate", "epochs", "batch_size", "lora")},
        cv_mean=float(validation.get(run.metric, float("nan"))),
        cv_std=0.0,
        fit_time_s=float(metrics.get("train_seconds") or 0.0),
        weight=1.0,
    )
    return TrainOutcome(
        model_id=run.model_id,
        task=run.task,
        metric=run.metric,
        score=test.get(run.metric),
        score_source="holdout",
        refit=False,
        selection=f"early stopping on validation {plan.get('selection_metric', run.metric)}",
        model_name=run.backbone,
        rows=sum(int(v) for v in (metrics.get("sizes") or {}).values()) or None,
        holdout=test,
        leaderboard=[entry],
        decisions=decisions,
        warnings=warnings,
        artifacts={p.name: str(p) for p in sorted(folder.iterdir()) if p.is_file()},
    )

"""The ``train`` job: load → profile → train (plan, search, ensemble, evaluate) → report.

Each step is a checkpointed stage. Every model the engine publishes is saved at once
(anytime results): predict can use it while the job runs, and a cancelled or crashed job
keeps its best model. The final report (metrics, leaderboard, plots, model card and a
standalone predict.py) is written beside the final model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from mltrainer.state.models import ArtifactRecord, ModelRecord
from mltrainer.state.store import new_id
from mltrainer.tools.jobs.context import JobContext
from mltrainer.tools.training.card import CARD_FILE
from mltrainer.tools.training.model import ModelMeta, save_model
from mltrainer.tools.training.request import TrainRequest

if TYPE_CHECKING:
    import pandas as pd

    from mltrainer.tools.training.automl import AutoMLResult


class TrainOutcome(BaseModel):
    """What a train job reports (the job's ``result``); filled in as it goes."""

    model_id: str | None = None
    task: str | None = None
    metric: str | None = None
    score: float | None = Field(default=None, description="Validation score of model_id.")
    model_name: str | None = None
    rows: int | None = None
    features: list[str] = Field(default_factory=list)
    cv_mean: float | None = None
    cv_std: float | None = None
    holdout: dict[str, float] = Field(default_factory=dict)
    leaderboard: list[dict[str, Any]] = Field(default_factory=list)
    feature_importance: list[tuple[str, float]] = Field(default_factory=list)
    dropped_columns: list[dict[str, Any]] = Field(default_factory=list)
    decisions: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    artifacts: dict[str, str] = Field(default_factory=dict)
    data_sha256: str | None = None
    search_stopped: str | None = Field(
        default=None,
        description="Why the search ended; 'converged' means the same data, settings and seed "
        "give the same model again, 'time' that the budget decided how many candidates ran.",
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_frame(path: Path) -> pd.DataFrame:
    from mltrainer.tools.profiling import read_table

    return read_table(path)


class ModelPublisher:
    """Saves each published model and points the job's result at the newest one."""

    def __init__(self, ctx: JobContext, request: TrainRequest) -> None:
        self.ctx = ctx
        self.request = request
        self.best: ModelMeta | None = None
        self.estimator: Any = None

    def _describe(self, estimator: Any, summary: dict[str, Any]) -> dict[str, Any]:
        """Fill what the summary leaves out from the plan checkpoint and the estimator."""
        plan = (self.ctx.restore("plan") or {}).get("plan") or {}
        known: dict[str, Any] = {
            "task": plan.get("task"),
            "classes": plan.get("classes") or getattr(estimator, "classes_", None),
            "positive_class": plan.get("positive_class"),
            "features": _feature_names(estimator, plan),
        }
        known.update({k: v for k, v in summary.items() if v is not None})
        if known.get("classes") is not None:
            known["classes"] = [str(c) for c in known["classes"]]
        return known

    def __call__(self, estimator: Any, summary: dict[str, Any]) -> None:
        ctx, store = self.ctx, self.ctx.store
        summary = self._describe(estimator, summary)
        model_id = new_id("model")
        folder = ctx.settings.models_dir / model_id
        meta = save_model(
            folder,
            estimator,
            ModelMeta(
                model_id=model_id,
                job_id=ctx.job.id,
                task=summary["task"],
                target=self.request.target,
                features=list(summary["features"]),
                classes=summary.get("classes") or None,
                positive_class=summary.get("positive_class"),
                metric=summary["metric"],
                score=summary.get("score"),
                name=summary.get("name", "model"),
            ),
        )
        store.save_model(
            ModelRecord(
                id=model_id,
                job_id=ctx.job.id,
                task=meta.task,
                target=meta.target,
                metric=meta.metric,
                score=meta.score,
                path=str(folder),
                features=meta.features,
                classes=meta.classes,
                summary={"name": meta.name},
            )
        )
        add_artifact(ctx, folder / "model.skops", "model", model_id)
        self.best, self.estimator = meta, estimator
        outcome = TrainOutcome.model_validate(store.get_job(ctx.job.id).result or {})
        outcome = outcome.model_copy(
            update={
                "model_id": model_id,
                "task": meta.task,
                "metric": meta.metric,
                "score": meta.score,
                "model_name": meta.name,
                "features": meta.features,
            }
        )
        store.update_job(ctx.job.id, result=outcome.model_dump(mode="json"))
        score = f"{meta.score:.4f}" if meta.score is not None else "n/a"
        ctx.event(f"Model {model_id} ({meta.name}) saved: {meta.metric} = {score}.")


def _feature_names(estimator: Any, plan: dict[str, Any]) -> list[str]:
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return [str(name) for name in names]
    return [c["name"] for c in plan.get("columns", [])]


def add_artifact(ctx: JobContext, path: Path, kind: str, model_id: str | None) -> None:
    media = {
        ".png": "image/png",
        ".json": "application/json",
        ".md": "text/markdown",
        ".py": "text/x-python",
    }
    ctx.store.add_artifact(
        ArtifactRecord(
            id=new_id("art"),
            job_id=ctx.job.id,
            model_id=model_id,
            kind=kind,
            path=str(path),
            media_type=media.get(path.suffix, "application/octet-stream"),
            bytes=path.stat().st_size,
        )
    )


def write_report(
    ctx: JobContext, result: AutoMLResult, meta: ModelMeta, loaded: dict[str, Any]
) -> dict[str, str]:
    """Metrics, leaderboard, plots, model card and predict.py, in the model's folder."""
    from mltrainer.tools.training import report

    folder = ctx.settings.models_dir / meta.model_id
    written: dict[str, str] = {}

    def put(name: str, content: str | bytes, kind: str) -> None:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(ctx.store.masker.mask(content))
        add_artifact(ctx, path, kind, meta.model_id)
        written[name] = str(path)

    summary = result.model_dump(mode="json", exclude={"plan"})
    put(
        "metrics.json",
        json.dumps(
            {k: summary[k] for k in ("task", "metric", "cv_mean", "cv_std", "holdout")}, indent=2
        ),
        "metrics",
    )
    put("leaderboard.json", json.dumps(summary["leaderboard"], indent=2), "leaderboard")
    put("plan.json", result.plan.model_dump_json(indent=2), "plan")
    manifest = {
        "job_id": ctx.job.id,
        "model_id": meta.model_id,
        "request": ctx.job.request,
        "instructions": ctx.job.request.get("instructions"),
        "data": {
            "path": ctx.job.request["dataset"],
            "sha256": loaded["sha256"],
            "rows": loaded["rows"],
        },
        "seed": result.seed,
        # Converged searches are reproducible; time-bound ones try as many candidates as fit.
        "search_stopped": result.search_stopped,
        "reproducible": result.search_stopped == "converged",
        "plan": result.plan.model_dump(mode="json"),
        "library_versions": {**result.library_versions, **meta.library_versions},
        "code_version": meta.library_versions.get("mltrainer-mcp"),
    }
    put("manifest.json", json.dumps(manifest, indent=2), "manifest")
    for name, png in report.plots_for_result(result).items():
        put(name, png, "plot")
    info = report.card_info_for_result(
        result,
        model_name=meta.model_id,
        dataset_name=Path(ctx.job.request["dataset"]).name,
        dataset_ref=ctx.job.request["dataset"],
        dataset_rows=loaded["rows"],
        dataset_columns=len(loaded["columns"]),
        dataset_hash=loaded["sha256"],
        instructions=ctx.job.request.get("instructions"),
    )
    put(CARD_FILE, report.model_card(info), "card")
    put("predict.py", report.predict_script(), "predict_script")
    return written


def run_train_job(ctx: JobContext) -> dict[str, Any]:
    request = TrainRequest.model_validate(ctx.job.request)
    path = Path(request.dataset)
    publisher = ModelPublisher(ctx, request)
    ctx.on_publish(publisher)

    def load() -> dict[str, Any]:
        frame = load_frame(path)
        ctx.event(f"Loaded {len(frame)} rows × {frame.shape[1]} columns.", progress=0.01)
        return {
            "rows": len(frame),
            "columns": [str(c) for c in frame.columns],
            "sha256": file_sha256(path),
        }

    loaded = ctx.stage("load", load)

    def profile() -> dict[str, Any]:
        from mltrainer.tools.profiling import profile as profile_table

        found = profile_table(path, request.target, seed=request.seed)
        for warning in found.warnings:
            ctx.event(f"Profile: {warning.message}", level="warning")
        return {
            "warnings": [w.model_dump(mode="json") for w in found.warnings],
            "task": found.target.task if found.target else None,
        }

    profiled = ctx.stage("profile", profile)

    def train() -> dict[str, Any]:
        from mltrainer.tools.profiling.models import ProfileWarning
        from mltrainer.tools.training.automl import fit_automl

        frame = load_frame(path)
        warnings = [ProfileWarning.model_validate(w) for w in profiled["warnings"]]
        result = fit_automl(frame, request, ctx, warnings=warnings)
        ctx.check_cancelled()
        if publisher.estimator is not result.estimator:
            publisher(
                result.estimator,
                {
                    "name": result.model_name,
                    "task": result.task,
                    "metric": result.metric,
                    "score": result.cv_mean,
                    "features": result.features,
                    "classes": result.classes,
                    "positive_class": result.positive_class,
                },
            )
        final = publisher.best
        assert final is not None
        artifacts = write_report(ctx, result, final, loaded)
        summary = result.model_dump(mode="json", exclude={"plan"})
        outcome = TrainOutcome.model_validate(ctx.store.get_job(ctx.job.id).result or {})
        return outcome.model_copy(
            update={
                "cv_mean": result.cv_mean,
                "cv_std": result.cv_std,
                "holdout": result.holdout,
                "leaderboard": summary["leaderboard"],
                "feature_importance": result.feature_importance[:20],
                "dropped_columns": summary["dropped_columns"],
                "decisions": summary["decisions"],
                "warnings": [w["message"] for w in profiled["warnings"]],
                "artifacts": artifacts,
                "search_stopped": result.search_stopped or None,
            }
        ).model_dump(mode="json")

    trained = ctx.stage("train", train)
    outcome = TrainOutcome.model_validate(trained)
    outcome.rows = loaded["rows"]
    outcome.data_sha256 = loaded["sha256"]
    ctx.event("Done.", progress=1.0)
    return outcome.model_dump(mode="json")

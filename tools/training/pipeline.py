"""The ``train`` job: load → train → report, each a checkpointed stage.

A model published during training is saved at once (anytime results): predict can use
it while the job is still running, and a cancelled or crashed job keeps its best model.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from state.models import ArtifactRecord, ModelRecord
from state.store import new_id
from tools.jobs.context import JobContext
from tools.training.model import ModelMeta, save_model
from tools.training.request import TrainRequest


class TrainOutcome(BaseModel):
    """What a finished train job reports (the job's ``result``)."""

    model_id: str | None = None
    task: str | None = None
    metric: str | None = None
    score: float | None = None
    model_name: str | None = None
    rows: int | None = None
    features: list[str] = []
    details: dict[str, Any] = {}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_frame(path: Path) -> Any:
    from tools.profiling import read_table

    return read_table(path)


class ModelPublisher:
    """Saves each published model and points the job at the newest one."""

    def __init__(self, ctx: JobContext, request: TrainRequest) -> None:
        self.ctx = ctx
        self.request = request
        self.best: ModelMeta | None = None

    def __call__(self, estimator: Any, summary: dict[str, Any]) -> None:
        ctx, store = self.ctx, self.ctx.store
        model_id = new_id("model")
        folder = ctx.settings.models_dir / model_id
        meta = ModelMeta(
            model_id=model_id,
            job_id=ctx.job.id,
            task=summary["task"],
            target=self.request.target,
            features=list(summary["features"]),
            classes=summary.get("classes"),
            positive_class=summary.get("positive_class"),
            metric=summary["metric"],
            score=summary.get("score"),
            name=summary.get("name", "model"),
        )
        meta = save_model(folder, estimator, meta)
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
        store.add_artifact(
            ArtifactRecord(
                id=new_id("art"),
                job_id=ctx.job.id,
                model_id=model_id,
                kind="model",
                path=str(folder / "model.skops"),
                bytes=(folder / "model.skops").stat().st_size,
            )
        )
        self.best = meta
        outcome = TrainOutcome(
            model_id=model_id,
            task=meta.task,
            metric=meta.metric,
            score=meta.score,
            model_name=meta.name,
            features=meta.features,
        )
        store.update_job(ctx.job.id, result=outcome.model_dump())
        ctx.event(f"Model {model_id} ({meta.name}) saved: {meta.metric} = {meta.score:.4f}.")


def run_train_job(ctx: JobContext) -> dict[str, Any]:
    request = TrainRequest.model_validate(ctx.job.request)
    path = Path(request.dataset)
    publisher = ModelPublisher(ctx, request)
    ctx.on_publish(publisher)

    def load() -> dict[str, Any]:
        frame = load_frame(path)
        ctx.event(f"Loaded {len(frame)} rows × {frame.shape[1]} columns.", progress=0.05)
        return {"rows": len(frame), "columns": list(frame.columns), "sha256": file_sha256(path)}

    loaded = ctx.stage("load", load)

    def train() -> dict[str, Any]:
        from tools.training.simple import fit_simple

        frame = load_frame(path)
        ctx.event("Training a gradient-boosting pipeline.", progress=0.1)
        fitted = fit_simple(frame, request)
        ctx.check_cancelled()
        publisher(fitted.pop("estimator"), fitted)
        return TrainOutcome.model_validate(ctx.store.get_job(ctx.job.id).result or {}).model_dump()

    trained = ctx.stage("train", train)
    outcome = TrainOutcome.model_validate(trained)
    outcome.rows = loaded["rows"]
    outcome.details = {"data_sha256": loaded["sha256"]}
    ctx.event("Done.", progress=1.0)
    return outcome.model_dump()

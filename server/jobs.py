"""Training and job tools: train_model, job_status, list_jobs, cancel_job, predict; and the
job and model resources."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Annotated, Literal

import anyio
from mcp.server import MCPServer
from mcp.types import CallToolResult, ContentBlock, ImageContent, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from mltrainer.server.app import AppContext, AppCtx, app_context
from mltrainer.server.errors import tool_errors
from mltrainer.state.models import TERMINAL, JobStatus
from mltrainer.tools.jobs.views import JobView
from mltrainer.tools.training.predict import PredictResult
from mltrainer.tools.training.predict import predict as run_predict
from mltrainer.tools.training.prepare import prepare_train_request
from mltrainer.tools.training.request import TrainRequest

POLL_S = 0.25
DatasetArg = Annotated[
    str,
    Field(
        min_length=1,
        max_length=4096,
        description="A local CSV/Parquet path (under the allowed roots), a dataset_id from "
        "download_dataset, or a ref such as 'kaggle:owner/name', 'hf:owner/name' or an https URL.",
    ),
]


class JobList(BaseModel):
    jobs: list[JobView]
    count: int


PlotsArg = Annotated[
    bool, Field(description="Attach the evaluation plots (PNG) once the job has succeeded.")
]
MAX_PLOTS = 4


def with_plots(app: AppContext, view: JobView, plots: bool) -> CallToolResult:
    """The view as structured output, plus the final model's plots as images."""
    content: list[ContentBlock] = [TextContent(type="text", text=view.model_dump_json())]
    if plots and view.status == "succeeded" and view.model_id:
        pngs = [a for a in app.store.artifacts(model_id=view.model_id) if a.kind == "plot"]
        for artifact in pngs[:MAX_PLOTS]:
            path = Path(artifact.path)
            if path.is_file():
                data = base64.b64encode(path.read_bytes()).decode()
                content.append(ImageContent(type="image", data=data, mime_type="image/png"))
    return CallToolResult(content=content, structured_content=view.model_dump(mode="json"))


def job_view(app: AppContext, job_id: str) -> JobView:
    return JobView.of(app.store.get_job(job_id), app.store.stages(job_id))


async def wait_for_job(app: AppContext, ctx: AppCtx, job_id: str, wait_s: float) -> JobView:
    """Poll the job until it ends or ``wait_s`` passes, relaying its progress to the caller."""
    deadline = time.monotonic() + wait_s
    last_event, last_progress = 0, -1.0
    while True:
        job = app.store.get_job(job_id)
        for event in app.store.events(job_id, after_id=last_event):
            last_event = event.id or last_event
            if event.progress is not None and event.progress > last_progress:
                last_progress = event.progress
                await ctx.report_progress(event.progress, 1.0, event.message)
        if job.status in TERMINAL or time.monotonic() >= deadline:
            return job_view(app, job_id)
        await anyio.sleep(min(POLL_S, max(deadline - time.monotonic(), 0.01)))


def register(mcp: MCPServer[AppContext]) -> None:
    @mcp.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, open_world_hint=True
        )
    )
    @tool_errors
    async def train_model(
        dataset: DatasetArg,
        ctx: AppCtx,
        target: Annotated[
            str | None,
            Field(max_length=512, description="The column to predict (omit only for clustering)."),
        ] = None,
        task: Annotated[
            Literal[
                "auto",
                "binary",
                "multiclass",
                "regression",
                "forecast",
                "text_classification",
                "clustering",
            ],
            Field(description="'auto' infers it from the target."),
        ] = "auto",
        metric: Annotated[
            str | None,
            Field(
                max_length=64,
                description="e.g. roc_auc, accuracy, f1, log_loss, r2, rmse, mae. Default: by task.",
            ),
        ] = None,
        time_budget_s: Annotated[
            int, Field(ge=5, le=86_400, description="Seconds of training.")
        ] = 60,
        wait_s: Annotated[
            float,
            Field(
                ge=0,
                le=3600,
                description="Seconds to wait for the result before returning the job.",
            ),
        ] = 50,
        models: Annotated[
            list[str] | None, Field(max_length=20, description="Allow-list of model families.")
        ] = None,
        validation: Annotated[
            Literal[
                "auto",
                "holdout",
                "kfold",
                "stratified_kfold",
                "group_kfold",
                "time_series",
                "repeated_kfold",
            ],
            Field(description="Validation strategy; 'auto' chooses by data size and task."),
        ] = "auto",
        exclude_columns: Annotated[list[str] | None, Field(max_length=1000)] = None,
        keep_columns: Annotated[
            list[str] | None,
            Field(
                max_length=1000,
                description="Use these as features even if the profile would drop them "
                "(identifier, constant, leakage).",
            ),
        ] = None,
        group_column: Annotated[
            str | None,
            Field(
                max_length=512,
                description="Rows sharing a value stay in one fold (group k-fold). For "
                "task='forecast' it names the series id (e.g. store): one model learns every "
                "series, and predict needs time_column and this column.",
            ),
        ] = None,
        time_column: Annotated[
            str | None,
            Field(max_length=512, description="Date column: time-ordered folds; for forecasts."),
        ] = None,
        horizon: Annotated[
            int | None, Field(ge=1, le=10_000, description="Forecast steps.")
        ] = None,
        positive_class: Annotated[str | None, Field(max_length=512)] = None,
        class_weight: Literal["balanced"] | None = None,
        max_memory_mb: Annotated[int | None, Field(ge=256, le=1_048_576)] = None,
        instructions: Annotated[str | None, Field(max_length=4000)] = None,
        seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0,
        plots: PlotsArg = True,
    ) -> Annotated[CallToolResult, JobView]:
        """Train a model on a tabular dataset, in one call: load → profile → plan → train →
        evaluate → save. Runs as a durable background job; waits up to wait_s seconds
        (sending progress), then returns the job. If status is still 'running', poll
        job_status(job_id); model_id and score are filled once a model is saved (a quick
        baseline is usable by predict early, and later models replace it only when better).
        Bad input (missing file, unknown column) is reported at once as an error.
        The same data, settings and seed give the same model when the result says
        search_stopped='converged'."""
        app = app_context(ctx)
        request = TrainRequest(
            dataset=dataset,
            target=target,
            task=task,
            metric=metric,
            time_budget_s=time_budget_s,
            models=models,
            validation=validation,
            exclude_columns=exclude_columns or [],
            keep_columns=keep_columns or [],
            group_column=group_column,
            time_column=time_column,
            horizon=horizon,
            positive_class=positive_class,
            class_weight=class_weight,
            max_memory_mb=max_memory_mb,
            instructions=instructions,
            seed=seed,
        )
        request = await anyio.to_thread.run_sync(
            prepare_train_request, request, app.settings, app.store, app.vault
        )
        job = await anyio.to_thread.run_sync(app.jobs.submit, "train", request.model_dump())
        view = await wait_for_job(app, ctx, job.id, wait_s)
        return with_plots(app, view, plots)

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    @tool_errors
    async def job_status(
        job_id: Annotated[
            str, Field(min_length=1, max_length=64, description="From train_model or list_jobs.")
        ],
        ctx: AppCtx,
        wait_s: Annotated[
            float, Field(ge=0, le=3600, description="Wait up to this long for the job to finish.")
        ] = 0,
        plots: PlotsArg = True,
    ) -> Annotated[CallToolResult, JobView]:
        """The status of a job (same shape as train_model's result): progress, the stage
        running, model_id and score once a model is saved, the error if it failed; once it
        has succeeded, its evaluation plots come back as images."""
        app = app_context(ctx)
        app.store.get_job(job_id)
        view = await wait_for_job(app, ctx, job_id, wait_s)
        return with_plots(app, view, plots)

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    @tool_errors
    async def list_jobs(
        ctx: AppCtx,
        status: Annotated[JobStatus | None, Field(description="Only jobs in this state.")] = None,
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
    ) -> JobList:
        """Jobs, newest first (status, progress, model_id and score of each), optionally only
        those in one state, e.g. status='running'."""
        app = app_context(ctx)
        jobs = [
            JobView.of(job, app.store.stages(job.id)) for job in app.store.list_jobs(status, limit)
        ]
        return JobList(jobs=jobs, count=len(jobs))

    @mcp.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True
        )
    )
    @tool_errors
    async def cancel_job(
        job_id: Annotated[str, Field(min_length=1, max_length=64)], ctx: AppCtx
    ) -> JobView:
        """Stop a queued or running job and everything it started. A model it already saved
        (the best so far) stays usable."""
        app = app_context(ctx)
        await anyio.to_thread.run_sync(app.jobs.cancel, job_id)
        return job_view(app, job_id)

    @mcp.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, open_world_hint=False
        )
    )
    @tool_errors
    async def predict(
        model: Annotated[
            str,
            Field(
                min_length=1, max_length=64, description="A model_id, or a job_id (its best model)."
            ),
        ],
        dataset: DatasetArg,
        ctx: AppCtx,
        threshold: Annotated[
            float | None,
            Field(
                gt=0,
                lt=1,
                description="Two-class models: predict the positive class from this probability "
                "on (default: the threshold chosen in training).",
            ),
        ] = None,
    ) -> PredictResult:
        """Predict with a trained model. Writes a CSV with one row per input row, in order:
        'prediction', and for classification 'proba_<class>' per class. Returns its path,
        the row count, a preview of the first rows, and warnings where the rows differ from
        the training data."""
        app = app_context(ctx)
        return await anyio.to_thread.run_sync(
            run_predict, model, dataset, app.settings, app.store, app.vault, threshold
        )

    @mcp.resource("mltrainer://jobs/{job_id}", mime_type="application/json")
    @tool_errors
    def job_resource(job_id: str, ctx: AppCtx) -> str:
        """A job's status as JSON."""
        return job_view(app_context(ctx), job_id).model_dump_json(indent=2)

    @mcp.resource("mltrainer://jobs/{job_id}/log", mime_type="text/plain")
    @tool_errors
    def job_log(job_id: str, ctx: AppCtx) -> str:
        """A job's events, one line each: time, level, stage, message."""
        app = app_context(ctx)
        app.store.get_job(job_id)
        lines = [
            f"{e.at:%Y-%m-%d %H:%M:%S} {e.level:<8} {e.stage or '-':<12} {e.message}"
            for e in app.store.events(job_id, limit=100_000)
        ]
        return "\n".join(lines) + "\n"

    @mcp.resource("mltrainer://jobs/{job_id}/plan", mime_type="application/json")
    @tool_errors
    def job_plan(job_id: str, ctx: AppCtx) -> str:
        """The training plan of a job and its decision log, once planned."""
        app = app_context(ctx)
        app.store.get_job(job_id)
        plans = [
            s.result for s in app.store.stages(job_id) if s.name in ("plan", "checkpoint:plan")
        ]
        return json.dumps(
            plans[-1] if plans else {"plan": None, "note": "Not planned yet."}, indent=2
        )

    @mcp.resource("mltrainer://models/{model_id}/card", mime_type="text/markdown")
    @tool_errors
    def model_card(model_id: str, ctx: AppCtx) -> str:
        """The model card (Hugging Face format) of a trained model."""
        from mltrainer.tools.training.card import card_for

        app = app_context(ctx)
        return card_for(app.store.get_model(model_id))

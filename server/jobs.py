"""Training and job tools: train_model, job_status, list_jobs, cancel_job; and the job
resources (status, log, plan). Using a trained model is server/models.py."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Literal

import anyio
from mcp.server import MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from mltrainer.server.context import AppContext, AppCtx, app_context
from mltrainer.server.images import tool_result
from mltrainer.server.models import DatasetArg
from mltrainer.server.runtimes import (
    CostArg,
    DryRunArg,
    GpuArg,
    RuntimeArg,
    check_local,
    start_deep_training,
    start_remote_training,
)
from mltrainer.server.ui import DASHBOARD_URI, ui_meta
from mltrainer.state.models import TERMINAL, JobKind, JobStatus
from mltrainer.tools.jobs.after_train import check_deploy
from mltrainer.tools.jobs.views import JobView
from mltrainer.tools.training.prepare import prepare_train_request
from mltrainer.tools.training.request import MODEL_FAMILIES, Task, TrainRequest, Validation

POLL_S = 0.25
# Clients give up on a request after a while (the TypeScript SDK: 60 s by default): a call
# never waits longer than this; long work is a job the caller polls with job_status.
MAX_WAIT_S = 50
ColumnArg = Annotated[str | None, Field(max_length=512)]


class JobList(BaseModel):
    jobs: list[JobView]
    count: int


PlotsArg = Annotated[
    bool, Field(description="Attach the evaluation plots (PNG) once the job has succeeded.")
]
MAX_PLOTS = 4


def with_plots(app: AppContext, view: JobView, plots: bool) -> CallToolResult:
    """The view as structured output, plus the final model's plots as images."""
    images: list[Path] = []
    if plots and view.status == "succeeded" and view.model_id:
        artifacts = app.store.artifacts(model_id=view.model_id)
        found = [Path(a.path) for a in artifacts if a.kind == "plot"]
        images = [path for path in found if path.is_file()][:MAX_PLOTS]
    return tool_result(view, images)


def job_view(app: AppContext, job_id: str) -> JobView:
    return JobView.of(app.store.get_job(job_id), app.store.stages(job_id))


async def wait_for_job(app: AppContext, ctx: AppCtx, job_id: str, wait_s: float) -> JobView:
    """Poll the job until it ends or ``wait_s`` passes, relaying its progress to the caller.

    Progress starts from where the job is, so that a caller polling with several calls sees
    it only grow."""
    deadline = time.monotonic() + wait_s
    job = app.store.get_job(job_id)
    last_event, last_progress = 0, job.progress
    if job.progress > 0 and wait_s > 0:
        await ctx.report_progress(job.progress, 1.0, job.message)
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
        ),
        meta=ui_meta(DASHBOARD_URI),  # hosts with MCP Apps show the job dashboard
    )
    async def train_model(
        dataset: DatasetArg,
        ctx: AppCtx,
        target: Annotated[
            str | None,
            Field(max_length=512, description="The column to predict (omit only for clustering)."),
        ] = None,
        task: Annotated[
            Task,
            Field(
                description="'auto' infers it from the target, or from a deep-learning layout "
                "(an image folder per class, COCO, CoNLL, a chat or text-pair table). "
                "image_classification, image_regression, object_detection, "
                "token_classification, summarization, translation and text_generation (and "
                "text_classification with a gpu or backbone) fine-tune a pretrained network "
                "on a GPU runtime (runtime='modal' or 'kaggle')."
            ),
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
                le=MAX_WAIT_S,
                description="Seconds to wait for the result before returning the job (at most "
                f"{MAX_WAIT_S}, so that the call ends before MCP clients time out; a longer "
                "training keeps running: poll job_status).",
            ),
        ] = 45,
        models: Annotated[
            list[Annotated[str, Field(max_length=64)]] | None,
            Field(
                max_length=20,
                description="Only these model families: "
                f"{', '.join(MODEL_FAMILIES)} (short names such as xgb, rf, hgb work too). "
                "Default: chosen by task and data size.",
            ),
        ] = None,
        validation: Annotated[
            Validation,
            Field(description="Validation strategy; 'auto' chooses by data size and task."),
        ] = "auto",
        exclude_columns: Annotated[
            list[Annotated[str, Field(max_length=512)]] | None,
            Field(max_length=1000, description="Columns never used as features (e.g. ids)."),
        ] = None,
        keep_columns: Annotated[
            list[Annotated[str, Field(max_length=512)]] | None,
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
        positive_class: Annotated[
            str | None,
            Field(
                max_length=512,
                description="Binary classification: the class that counts as positive for "
                "roc_auc, f1, precision and recall. Default: '1', 'yes' or 'True' when present, "
                "else the rarer class.",
            ),
        ] = None,
        class_weight: Annotated[
            Literal["balanced"] | None,
            Field(
                description="'balanced' weights rows inversely to their class's frequency (for "
                "imbalanced targets). Default: every row weighs the same."
            ),
        ] = None,
        max_memory_mb: Annotated[
            int | None,
            Field(
                ge=256,
                le=1_048_576,
                description="Memory budget: if the data would not fit, the model search trains "
                "on a row sample that does (the decisions say how many rows). Default: no cap.",
            ),
        ] = None,
        instructions: Annotated[
            str | None,
            Field(
                max_length=4000,
                description="Free-text notes about this training, only recorded (manifest.json, "
                "model card, decisions): they do not change what is trained. Use the other "
                "arguments to steer it.",
            ),
        ] = None,
        seed: Annotated[
            int,
            Field(
                ge=0,
                le=2**31 - 1,
                description="Random seed of splits, sampling and every model: the same data, "
                "settings and seed give the same model when the search converges.",
            ),
        ] = 0,
        plots: PlotsArg = True,
        runtime: RuntimeArg = "local",
        gpu: GpuArg = None,
        max_cost_usd: CostArg = None,
        parallel: Annotated[
            int,
            Field(
                ge=1,
                le=1000,
                description="Search trials evaluated at once (tabular tasks): worker "
                "processes here (at most this machine's cores); on runtime='modal', N trial "
                "containers beside the engine's own (N + 1 counted in the cost estimate and "
                "Modal's limit); Kaggle accepts only 1. 1 (default): one trial at a time.",
            ),
        ] = 1,
        backbone: Annotated[
            str | None,
            Field(
                max_length=200,
                description="Deep-learning tasks: the pretrained checkpoint to fine-tune, e.g. "
                "'google/vit-base-patch16-224' (it must be of the task's architecture class). "
                "Default: the planner's choice by task, language, data size and GPU memory.",
            ),
        ] = None,
        dry_run: DryRunArg = False,
        iterate: Annotated[
            int,
            Field(
                ge=0,
                le=5,
                description="Follow-up rounds: each analyses where the model errs on its held-out "
                "rows, applies what the planner can act on (class weights, a group or time "
                "split, other families), trains again (time_budget_s each) and keeps the round "
                "only when its held-out score is better; 'rounds' and 'decisions' say how.",
            ),
        ] = 0,
        deploy_to: Annotated[
            str | None,
            Field(
                min_length=3,
                max_length=200,
                description="Once the job has succeeded, deploy its model to this Hub model "
                "repository ('namespace/name'), as deploy_model does, with secret://HF_TOKEN; "
                "the result's 'deployment' holds the repo URL.",
            ),
        ] = None,
        deploy_space: Annotated[
            bool, Field(description="With deploy_to: also a Gradio Space serving predictions.")
        ] = False,
    ) -> Annotated[CallToolResult, JobView]:
        """Train a model on a tabular dataset, in one call: load → profile → plan → train →
        evaluate → save. Runs as a durable background job; waits up to wait_s seconds
        (at most 50, sending progress), then returns the job. If status is still 'running',
        poll job_status(job_id, wait_s=45); model_id and score are filled once a model is
        saved (a quick baseline is usable by predict early, and later models replace it only
        when better). Bad input (missing file, unknown column, unknown argument) is reported
        at once as an error. The same data, settings and seed give the same model when the
        result says search_stopped='converged'. runtime='modal' or 'kaggle' runs the same
        engine there (gpu, parallel; refused before anything is sent if it could cost more
        than max_cost_usd or fails its dry run on a sample) and brings the model back, usable
        by predict here; dry_run=True only runs those checks and returns their report.
        Deep-learning tasks (images, detection, token tagging, summaries, translation, text
        generation) are planned (backbone and settings, each with its reason in decisions),
        their training script is proven by a dry run on a tiny random model in the sandbox,
        and then run on the GPU runtime; predict takes image files or texts for them."""
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
            runtime=runtime,
            gpu=gpu,
            max_cost_usd=max_cost_usd,
            parallel=parallel,
            backbone=backbone,
            iterate=iterate,
            deploy_to=deploy_to,
            deploy_space=deploy_space,
        )

        def submit() -> str:
            check_deploy(request)
            from mltrainer.tools.jobs.deep import deep_task

            deep = deep_task(request, app.settings, app.store, app.vault)
            if deep is not None:  # a pretrained network from a rendered template
                return start_deep_training(app, request, deep, dry_run=dry_run)
            if runtime != "local" or dry_run:  # the pre-flight guard, then a remote job
                return start_remote_training(app, request, dry_run=dry_run)
            check_local(request)
            prepared = prepare_train_request(request, app.settings, app.store, app.vault)
            return app.jobs.submit(prepared).id

        job_id = await app.run_blocking(submit)
        view = await wait_for_job(app, ctx, job_id, wait_s)
        return with_plots(app, view, plots)

    @mcp.tool(
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
        meta=ui_meta(DASHBOARD_URI),
    )
    async def job_status(
        job_id: Annotated[
            str, Field(min_length=1, max_length=64, description="From train_model or list_jobs.")
        ],
        ctx: AppCtx,
        wait_s: Annotated[
            float,
            Field(
                ge=0,
                le=MAX_WAIT_S,
                description=f"Wait up to this long (at most {MAX_WAIT_S} s, under MCP clients' "
                "request timeout) for the job to end; call again to wait longer.",
            ),
        ] = 0,
        plots: PlotsArg = True,
    ) -> Annotated[CallToolResult, JobView]:
        """The status of any job (train_model's, or a long run_code's; the same shape as
        train_model's result): progress, the stage running, model_id and score once a model
        is saved, the error if it failed, the full result once it has ended, and what to do
        next. Once a training job has succeeded, its evaluation plots come back as images."""
        app = app_context(ctx)
        app.store.get_job(job_id)
        view = await wait_for_job(app, ctx, job_id, wait_s)
        return with_plots(app, view, plots)

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def list_jobs(
        ctx: AppCtx,
        status: Annotated[JobStatus | None, Field(description="Only jobs in this state.")] = None,
        kind: Annotated[
            JobKind | None,
            Field(description="Only training jobs ('train') or long code runs ('code')."),
        ] = None,
        limit: Annotated[int, Field(ge=1, le=500, description="At most this many jobs.")] = 50,
    ) -> JobList:
        """Jobs, newest first (status, progress, model_id and score of each), optionally only
        those in one state (e.g. status='running') or of one kind (kind='train')."""
        app = app_context(ctx)
        found = app.store.list_jobs(status, limit, kind=kind)
        jobs = [JobView.of(job, app.store.stages(job.id)) for job in found]
        return JobList(jobs=jobs, count=len(jobs))

    @mcp.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True
        )
    )
    async def cancel_job(
        job_id: Annotated[
            str, Field(min_length=1, max_length=64, description="From train_model or list_jobs.")
        ],
        ctx: AppCtx,
    ) -> JobView:
        """Stop a queued or running job and everything it started (its worker processes, or
        the sandbox of a code run). A model it already saved (the best so far) stays usable."""
        app = app_context(ctx)
        await app.run_blocking(lambda: app.jobs.cancel(job_id))
        return job_view(app, job_id)

    @mcp.resource("mltrainer://jobs/{job_id}", mime_type="application/json")
    def job_resource(job_id: str, ctx: AppCtx) -> str:
        """A job's status as JSON."""
        return job_view(app_context(ctx), job_id).model_dump_json(indent=2)

    @mcp.resource("mltrainer://jobs/{job_id}/log", mime_type="text/plain")
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

"""Prompts a person can pick in their MCP client: train a model on a file, explain a job."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from mltrainer.server.context import AppContext, AppCtx, app_context
from mltrainer.tools.jobs.views import JobView


def register(mcp: MCPServer[AppContext]) -> None:
    @mcp.prompt(title="Train a model on this file")
    def train_on_file(
        dataset: Annotated[
            str, Field(description="A CSV/Parquet path, a dataset_id or a kaggle:/hf:/https ref.")
        ],
        target: Annotated[
            str | None, Field(description="The column to predict; leave empty to be asked.")
        ] = None,
    ) -> str:
        """Profile a dataset, train a model on it and report how good it is."""
        column = (
            f"the column '{target}'"
            if target
            else "the column the profile suggests (ask me if it is unclear)"
        )
        return (
            f"Train a machine-learning model on {dataset!r} to predict {column}.\n"
            "1. Call profile_dataset on it and tell me, briefly, what the data looks like and "
            "which warnings matter (leakage, identifiers, imbalance).\n"
            "2. Call train_model with that target. If the job is still running when the call "
            "returns, call job_status with wait_s=45 until it has ended.\n"
            "3. Report the model_id, the metric and its score, the held-out score, the most "
            "important features and the decisions that shaped the model, in plain words.\n"
            "4. Tell me how to predict with it (predict with the model_id and a new file)."
        )

    @mcp.prompt(title="Explain a job")
    def explain_job(
        job_id: Annotated[str, Field(description="A job_id from train_model or list_jobs.")],
        ctx: AppCtx,
    ) -> str:
        """Explain a job's state and result in plain words, with what to do next."""
        app = app_context(ctx)
        view = JobView.of(app.store.get_job(job_id), app.store.stages(job_id))
        return (
            f"Here is the state of job {job_id} as JSON:\n\n"
            f"{view.model_dump_json(indent=2, exclude_none=True)}\n\n"
            "Explain it to me in plain words: what was asked, where it stands, and — if it "
            "has ended — how good the result is and why (the metric and score, the held-out "
            "score, the decisions, the warnings). If it failed, say why and what to change. "
            "End with the next step."
        )

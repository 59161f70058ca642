"""The deploy_model tool: a trained model to the Hugging Face Hub, with its card and a Space."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import anyio
import anyio.from_thread
from mcp.server import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from mltrainer.server.context import AppContext, AppCtx, app_context
from mltrainer.server.errors import tool_errors
from mltrainer.tools.deploy.models import DeployOptions, DeployResult


def register(mcp: MCPServer[AppContext]) -> None:
    @mcp.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
        )
    )
    @tool_errors
    async def deploy_model(
        model: Annotated[
            str,
            Field(
                min_length=1,
                max_length=64,
                description="A model_id, or a job_id (its final model; the job must have succeeded).",
            ),
        ],
        repo_id: Annotated[
            str,
            Field(
                min_length=3,
                max_length=200,
                description="The model repository, 'namespace/name' (your user or organisation).",
            ),
        ],
        ctx: AppCtx,
        token: Annotated[
            str,
            Field(
                max_length=80,
                description="A secret reference to a Hugging Face write token, never the token.",
            ),
        ] = "secret://HF_TOKEN",
        private: Annotated[bool, Field(description="Create the repositories private.")] = True,
        space: Annotated[
            bool,
            Field(description="Also deploy a Gradio Space '<repo_id>-demo' serving predictions."),
        ] = False,
        dry_run: Annotated[
            bool,
            Field(description="Only build the files and the card; send nothing to the Hub."),
        ] = False,
    ) -> DeployResult:
        """Deploy a trained model to the Hugging Face Hub in one commit: model.skops, meta.json,
        a standalone predict.py, requirements.txt pinned to the training versions, metrics.json,
        manifest.json, the plots, and a model card (README.md) with the held-out scores as Hub
        metadata. The token is checked first (it must be able to write the namespace). Deploying
        the same model again makes no new commit; a newer model updates files and card in one
        commit. With space=true, a Gradio Space with a form (one input per feature) and a CSV
        upload serves predictions. dry_run=true returns the file list and the card without any
        request. Returns repo_url, commit_sha, files, space_url, card_preview and notes."""
        app = app_context(ctx)
        from mltrainer.tools.deploy.deploy import deploy
        from mltrainer.tools.training.predict import model_id_for

        def progress(done: float, total: float | None, message: str) -> None:
            anyio.from_thread.run(ctx.report_progress, done, total, message)

        def run() -> DeployResult:
            record = app.store.get_model(model_id_for(model, app.store))
            folder = Path(record.path)
            return deploy(
                folder,
                DeployOptions(repo_id=repo_id, private=private, space=space, dry_run=dry_run),
                token_ref=token,
                settings=app.settings,
                vault=app.vault,
                masker=app.masker,
                store=app.store,
                progress=progress,
            )

        return await anyio.to_thread.run_sync(run)

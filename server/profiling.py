"""The profile_dataset tool and the stored-profile resource."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from mcp.server import MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from mltrainer.server.context import AppContext, AppCtx, app_context
from mltrainer.server.images import tool_result
from mltrainer.server.ui import PROFILE_URI, ui_meta
from mltrainer.tools.profiling.models import DatasetProfile


def register(mcp: MCPServer[AppContext]) -> None:
    @mcp.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
        ),
        meta=ui_meta(PROFILE_URI),  # hosts with MCP Apps show the profile view
    )
    async def profile_dataset(
        dataset: Annotated[
            str,
            Field(
                min_length=1,
                max_length=4096,
                description="A local CSV/TSV/Parquet/JSON-lines/Excel path (under the allowed "
                "roots), a dataset_id from download_dataset (optionally dataset_id/FILE), or a "
                "kaggle:/hf:/https:// ref (downloaded first).",
            ),
        ],
        ctx: AppCtx,
        target: Annotated[
            str | None,
            Field(
                max_length=512,
                description="The column to predict. Leave empty to get suggested targets.",
            ),
        ] = None,
        plots: Annotated[
            bool, Field(description="Return PNG plots (target, missingness, correlations).")
        ] = True,
    ) -> Annotated[CallToolResult, DatasetProfile]:
        """Profile a tabular dataset before training on it.

        Sniffs the format (encoding, separator, decimal comma, header), types every column
        (numeric, categorical, boolean, datetime, text, identifier, constant) with missing
        ratio, cardinality, stats and top values, infers the task for `target` (binary,
        multiclass, regression, forecast, text_classification) with class balance, finds a date
        column's frequency and gaps, and lists warnings {kind, column, message, severity}:
        leakage, identifier, constant, heavy_missing, high_cardinality, duplicate_rows,
        ragged_rows, class_imbalance. train_model drops leakage/identifier/constant columns.
        Big files are streamed: row and missing counts are exact, other statistics come from a
        uniform sample. Plots come back as images; the full profile is stored as an artifact.
        """
        app = app_context(ctx)
        from mltrainer.tools.profiling.service import profile_dataset as run
        from mltrainer.tools.profiling.service import shortened

        result = await app.run_blocking(
            lambda: run(
                dataset,
                target,
                settings=app.settings,
                store=app.store,
                vault=app.vault,
                plots=plots,
            )
        )
        return tool_result(shortened(result), [Path(plot.path) for plot in result.plots])

    @mcp.resource("mltrainer://profiles/{profile_id}", mime_type="application/json")
    def profile_resource(profile_id: str, ctx: AppCtx) -> str:
        """A stored dataset profile (the profile_id returned by profile_dataset), in full."""
        from mltrainer.tools.profiling.service import stored_profile

        return stored_profile(app_context(ctx).settings, profile_id)

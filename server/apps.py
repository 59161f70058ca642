"""The MCP Apps extension (the SDK's ``mcp.server.apps``): the views of server/ui/ as ``ui://``
resources, the app-only tool they call, and graceful degradation for every other client.

The model-visible tools bound to a view (``train_model``, ``job_status``, ``profile_dataset``)
carry ``_meta.ui.resourceUri`` from ``server.ui.ui_meta``; their results are the same for
every client. A client that did not negotiate MCP Apps (``capabilities.extensions`` without
``io.modelcontextprotocol/ui`` listing ``text/html;profile=mcp-app``) sees exactly the server it
saw before the views existed: ``AppsGate`` takes the ``ui://`` resources and the app-only
tools out of its lists, the ``ui`` binding out of its tool list, and refuses to read a view or
call an app-only tool for it, so a text-only client never receives HTML.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.apps import Apps, client_supports_apps
from mcp.server.context import CallNext, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    CallToolResult,
    ListResourcesResult,
    ListToolsResult,
    TextContent,
    ToolAnnotations,
)
from pydantic import Field

from mltrainer.server.context import AppCtx, app_context
from mltrainer.server.ui import DASHBOARD_URI, PROFILE_URI, view_html
from mltrainer.server.ui.timeline import JobTimeline, job_timeline

GATED_METHODS = frozenset({"tools/list", "tools/call", "resources/list", "resources/read"})
NO_APPS = (
    "This client did not negotiate MCP Apps (capabilities.extensions "
    "'io.modelcontextprotocol/ui' with mimeTypes ['text/html;profile=mcp-app']): ui:// views "
    "are served only to hosts that render them. The tools' results hold the same data."
)


async def job_timeline_tool(
    job_id: Annotated[
        str, Field(min_length=1, max_length=64, description="The job the dashboard shows.")
    ],
    ctx: AppCtx,
    after_event: Annotated[
        int,
        Field(ge=0, description="Only events after this id: the cursor of the previous call."),
    ] = 0,
) -> JobTimeline:
    """For the job dashboard view only (hosts do not offer it to the model): the job's stages
    with their timings, its events after a cursor, and the leaderboard and planner decisions
    so far. Call job_status for the job itself."""
    app = app_context(ctx)
    return await app.run_blocking(lambda: job_timeline(app.store, job_id, after_event))


def build_apps() -> Apps:
    apps = Apps()
    apps.add_html_resource(
        DASHBOARD_URI,
        view_html(DASHBOARD_URI),
        name="job_dashboard",
        title="Training job",
        description="A training job, live: stages, progress, leaderboard, decisions, metrics "
        "and plots, with cancel and predict.",
        prefers_border=True,
    )
    apps.add_html_resource(
        PROFILE_URI,
        view_html(PROFILE_URI),
        name="dataset_profile",
        title="Dataset profile",
        description="A dataset's columns, warnings, target and plots.",
        prefers_border=True,
    )
    apps.tool(
        resource_uri=DASHBOARD_URI,
        visibility=["app"],
        name="job_timeline",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )(job_timeline_tool)
    return apps


class AppsGate:
    """Server middleware: what the Apps extension adds is seen only by clients that use it."""

    def __init__(self, apps: Apps) -> None:
        self.app_only = {
            binding.kwargs.get("name") or binding.fn.__name__
            for binding in apps.tools()
            if "model" not in (binding.meta or {}).get("ui", {}).get("visibility", ["model"])
        }

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Any:
        if ctx.method not in GATED_METHODS or client_supports_apps(ctx):
            return await call_next(ctx)
        params = ctx.params or {}
        if ctx.method == "resources/read" and str(params.get("uri", "")).startswith("ui://"):
            raise MCPError(code=INVALID_PARAMS, message=NO_APPS)
        if ctx.method == "tools/call" and params.get("name") in self.app_only:
            # What any unknown tool gets: for this client the tool does not exist.
            text = f"Unknown tool: {params.get('name')}"
            return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
        result = await call_next(ctx)
        if ctx.method == "tools/list":
            return _without_app_tools(result, self.app_only)
        if ctx.method == "resources/list":
            return _without_views(result)
        return result


def _without_app_tools(result: Any, app_only: set[str]) -> ListToolsResult:
    listed = ListToolsResult.model_validate(result)
    tools = []
    for tool in listed.tools:
        if tool.name in app_only:
            continue
        if tool.meta and "ui" in tool.meta:
            rest = {key: value for key, value in tool.meta.items() if key != "ui"}
            tool = tool.model_copy(update={"meta": rest or None})
        tools.append(tool)
    return listed.model_copy(update={"tools": tools})


def _without_views(result: Any) -> ListResourcesResult:
    listed = ListResourcesResult.model_validate(result)
    kept = [r for r in listed.resources if not str(r.uri).startswith("ui://")]
    return listed.model_copy(update={"resources": kept})

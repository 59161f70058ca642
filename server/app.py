"""Builds the MCP server: a typed lifespan context and one module per domain of tools.

Every tool, resource and prompt is registered through ``MLTrainerServer``, which applies the
house rules once, where they are registered: project errors become tool errors (tools) or
invalid-params errors (resources, prompts), and a tool refuses arguments it does not take.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from mcp.server import MCPServer

from mltrainer.server.context import AppContext, build_context
from mltrainer.server.errors import forbid_unknown_arguments, request_errors, tool_errors
from mltrainer.server.masking import mask_logs, mask_results
from mltrainer.state.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

INSTRUCTIONS = """\
mltrainer trains machine-learning models on tabular data. Typical flow: search_datasets →
download_dataset → profile_dataset → train_model (waits up to wait_s, at most 50 s, then
returns a job_id to poll with job_status) → predict. Long work runs as durable jobs:
list_jobs, job_status, cancel_job. run_code runs Python in an isolated sandbox. Credentials
are never passed as values: use references like secret://HF_TOKEN (see list_secrets).
"""


class MLTrainerServer(MCPServer[AppContext]):
    def add_tool(  # type: ignore[override]  # the same parameters, passed on as they are
        self, fn: Callable[..., Any], name: str | None = None, **kwargs: Any
    ) -> None:
        super().add_tool(tool_errors(fn), name=name, **kwargs)
        # The SDK keeps the registered Tool in its tool manager; tighten it in place.
        tool = self._tool_manager.get_tool(name or fn.__name__)
        assert tool is not None
        forbid_unknown_arguments(tool)

    def resource(self, uri: str, **kwargs: Any) -> Callable[[F], F]:
        register = super().resource(uri, **kwargs)

        def decorator(fn: F) -> F:
            register(request_errors(fn))
            return fn

        return decorator

    def prompt(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        register = super().prompt(*args, **kwargs)

        def decorator(fn: F) -> F:
            register(request_errors(fn))
            return fn

        return decorator


def create_server(settings: Settings | None = None) -> MCPServer[AppContext]:
    @asynccontextmanager
    async def lifespan(_: MCPServer[AppContext]) -> AsyncIterator[AppContext]:
        context = build_context(settings or Settings())
        mask_logs(context.masker)
        try:
            yield context
        finally:
            context.close()

    from mltrainer.server.apps import AppsGate, build_apps

    apps = build_apps()  # the MCP App views (server/ui/), seen only by hosts that render them
    mcp = MLTrainerServer(
        "mltrainer",
        instructions=INSTRUCTIONS,
        version="0.1.0",
        lifespan=lifespan,
        extensions=[apps],
        middleware=[mask_results, AppsGate(apps)],
    )
    from mltrainer.server import (
        analysis,
        data,
        deploy,
        jobs,
        models,
        profiling,
        prompts,
        runtimes,
        sandbox,
        secrets,
    )

    for domain in (
        jobs,
        models,
        runtimes,
        data,
        profiling,
        sandbox,
        secrets,
        deploy,
        analysis,
        prompts,
    ):
        domain.register(mcp)
    return mcp

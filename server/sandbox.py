"""Sandbox tools: run_code, sandbox_info, reset_session, close_session."""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Annotated

import anyio
from mcp.server import MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from mltrainer.sandbox.models import SYNC_LIMIT_S, RunResult, SandboxInfo, SessionClosed
from mltrainer.server.context import AppContext, AppCtx, app_context
from mltrainer.server.images import tool_result

if TYPE_CHECKING:
    from mltrainer.sandbox.manager import SandboxManager

from mltrainer.server.errors import tool_errors

_create_lock = threading.Lock()

SessionArg = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="A session name given to run_code.",
    ),
]


def manager_of(app: AppContext) -> SandboxManager:
    """The lifespan's sandbox manager, created on first use (probing Docker takes time)."""
    manager = app.sandbox
    if manager is None:
        with _create_lock:
            manager = app.sandbox
            if manager is None:
                from mltrainer.sandbox.manager import create_manager

                manager = create_manager(app.settings, app.masker, app.store)
                app.jobs.on_cancel("code", manager.cancel_job)  # cancel_job stops its sandbox
                app.sandbox = manager
    return manager


async def _manager(ctx: AppCtx) -> SandboxManager:
    app = app_context(ctx)
    return await anyio.to_thread.run_sync(lambda: manager_of(app))


def register(mcp: MCPServer[AppContext]) -> None:
    @mcp.tool(
        annotations=ToolAnnotations(
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=False,
        )
    )
    @tool_errors
    async def run_code(
        code: Annotated[
            str, Field(min_length=1, max_length=1_000_000, description="Python source to run.")
        ],
        ctx: AppCtx,
        session: Annotated[
            str | None,
            Field(
                max_length=64,
                pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                description="Name of a persistent interpreter: variables and imports survive "
                "between calls with the same name (created on first use). Omit for a fresh "
                "process.",
            ),
        ] = None,
        timeout_s: Annotated[
            float,
            Field(
                gt=0,
                le=3600,
                description="Wall-clock limit; the sandbox is killed at it. Up to "
                f"{SYNC_LIMIT_S:g} s the call waits for the result; longer, it returns at once "
                "with status 'running' and a job_id to poll with job_status.",
            ),
        ] = 30,
        files: Annotated[
            list[Annotated[str, Field(min_length=1, max_length=4096)]] | None,
            Field(
                max_length=32,
                description="Host files or directories to make readable (read-only, at the same "
                "path) inside the sandbox. Only paths under the data roots are allowed.",
            ),
        ] = None,
        network: Annotated[
            bool, Field(description="Allow network access; refused unless the server enables it.")
        ] = False,
    ) -> Annotated[CallToolResult, RunResult]:
        """Run Python code in an isolated sandbox (no network, no access to the person's files
        or credentials) with pandas, numpy, scikit-learn, xgboost and matplotlib available.
        The working directory is a scratch workspace; files it writes are listed in
        files_written. The value of a final expression is printed, like a notebook. A failure
        of the code is not a tool error: status is 'error' and stderr has the traceback;
        'timeout' and 'killed' mean the sandbox stopped it (see reason). Open matplotlib
        figures come back as PNG images. stdout/stderr are capped and secrets are masked.
        Pass session='name' to keep state between calls; call close_session when done.
        A timeout_s too long to wait for in one call makes it a job: poll job_status."""
        manager = await _manager(ctx)
        if timeout_s > SYNC_LIMIT_S:
            started = await anyio.to_thread.run_sync(
                functools.partial(
                    manager.start_job,
                    code,
                    session=session,
                    timeout_s=timeout_s,
                    files=files,
                    network=network,
                )
            )
            return tool_result(started)
        from mltrainer.sandbox.calls import StopSignal

        stop = StopSignal()
        run = functools.partial(
            manager.run,
            code,
            session=session,
            timeout_s=timeout_s,
            files=files,
            network=network,
            stop=stop,
        )
        try:
            # Abandoned on cancel, so that a cancelled call (notifications/cancelled, or the
            # transport closing at shutdown) returns now; the stop kills its sandbox, and the
            # thread ends as soon as it has recorded that.
            result, images = await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            stop.stop(
                "Cancelled by the client while it ran; every process of its sandbox was killed."
            )
            raise
        return tool_result(result, images)

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    @tool_errors
    async def sandbox_info(ctx: AppCtx) -> SandboxInfo:
        """Which sandbox backend run_code uses (docker, bwrap, or the unisolated 'process'
        opt-in) and why, the state of every backend on this machine, the resource limits,
        whether network is allowed, the open sessions, and the latest run_code calls (runs
        are not jobs: list_jobs shows only the long ones that ran as jobs)."""
        manager = await _manager(ctx)
        return manager.info()

    @mcp.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, open_world_hint=False
        )
    )
    @tool_errors
    async def reset_session(session: SessionArg, ctx: AppCtx) -> SessionClosed:
        """Stop a session's interpreter, losing its variables; files in its workspace stay.
        The next run_code with the same session name starts a fresh interpreter (use this to
        change the files mounted into a session)."""
        manager = await _manager(ctx)
        return await anyio.to_thread.run_sync(lambda: manager.reset_session(session))

    @mcp.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, open_world_hint=False
        )
    )
    @tool_errors
    async def close_session(session: SessionArg, ctx: AppCtx) -> SessionClosed:
        """Close a session: stop its interpreter and delete its workspace."""
        manager = await _manager(ctx)
        return await anyio.to_thread.run_sync(lambda: manager.close_session(session))

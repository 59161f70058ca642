"""The CLI's MCP client: it starts ``mltrainer-mcp`` over stdio, exactly as an MCP client
application does, and calls its tools. Shared by every command and by ``mltrainer demo``.

A tool's error becomes ``CliError`` with the server's own message (what went wrong and what to
do next) and the exit code of bad input; a server that cannot start, or that goes away, is
``CliError`` with the exit code of an unavailable service and the end of its log.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltrainer.state.settings import Settings

# Exit codes (documented in the README's CLI section).
EXIT_OK = 0
EXIT_FAILED = 1  # the job failed or was cancelled; doctor found a problem
EXIT_USAGE = 2  # bad input: the server refused the arguments (or argparse did)
EXIT_UNAVAILABLE = 3  # the server could not start or went away
EXIT_INTERRUPTED = 130

LOG_NAME = "cli-server.log"
TERMINAL = ("succeeded", "failed", "cancelled")
Progress = Callable[[float, float | None, str | None], Awaitable[None]]


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Server:
    """A connected MCP client of a server this process started."""

    client: Any
    log: Path

    async def call(
        self, tool: str, arguments: dict[str, Any], progress: Progress | None = None
    ) -> dict[str, Any]:
        """The tool's structured result; its error as ``CliError``."""
        try:
            result = await self.client.call_tool(tool, arguments, progress_callback=progress)
        except Exception as exc:  # the connection, not the tool: the server went away
            raise unavailable(self.log, f"{tool} got no answer ({type(exc).__name__})") from exc
        if result.is_error:
            text = " ".join(getattr(block, "text", "") for block in result.content)
            raise CliError(text.removeprefix(f"Error executing tool {tool}: ").strip())
        return dict(result.structured_content or {})

    async def follow(self, job: dict[str, Any], progress: Progress | None = None) -> dict[str, Any]:
        """Poll ``job_status`` until the job has ended (no call waits more than 30 s)."""
        while job["status"] not in TERMINAL:
            job = await self.call(
                "job_status", {"job_id": job["job_id"], "wait_s": 30, "plots": False}, progress
            )
        return job


def unavailable(log: Path, what: str) -> CliError:
    tail = log.read_text(errors="replace").strip().splitlines()[-8:] if log.is_file() else []
    detail = ("\nThe server's last log lines:\n  " + "\n  ".join(tail)) if tail else ""
    return CliError(
        f"The mltrainer server is not available: {what}. Run 'mltrainer doctor' to see what a "
        f"first run needs; the server's log is {log}.{detail}",
        EXIT_UNAVAILABLE,
    )


@asynccontextmanager
async def connect(settings: Settings | None = None) -> AsyncIterator[Server]:
    """Start the server over stdio (from this interpreter) and connect to it.

    The server gets this process's environment (MLTRAINER_* settings, credentials it reads
    from the environment) and working directory (an allowed data folder); its log goes to
    ``$MLTRAINER_HOME/cli-server.log``, not to the terminal.
    """
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    settings = settings or Settings()
    settings.ensure_dirs()
    log = settings.home / LOG_NAME
    params = StdioServerParameters(
        command=sys.executable,
        args=["-P", "-m", "mltrainer.server.cli", "serve"],
        env={**os.environ, "MLTRAINER_HOME": str(settings.home), "PYTHONUNBUFFERED": "1"},
        cwd=os.getcwd(),
    )
    descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(descriptor, "w", encoding="utf-8") as errlog:
        async with AsyncExitStack() as stack:
            try:
                client = await stack.enter_async_context(
                    Client(stdio_client(params, errlog=errlog))
                )
            except Exception as exc:  # the spawn or the handshake failed: its log says why
                raise unavailable(log, f"it did not start ({type(exc).__name__})") from exc
            yield Server(client, log)


def run(command: Callable[[], Awaitable[int]]) -> int:
    """Run an async command; its ``CliError`` (also from inside the client's task groups) is
    printed as the message it carries, with its exit code."""
    import anyio

    try:
        return anyio.run(command)
    except BaseException as exc:
        found = _first(exc, (CliError, KeyboardInterrupt))
        if isinstance(found, KeyboardInterrupt):
            return EXIT_INTERRUPTED
        if isinstance(found, CliError):
            print(str(found), file=sys.stderr)
            return found.code
        raise


def _first(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    if isinstance(exc, kinds):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        if (found := _first(inner, kinds)) is not None:
            return found
    return None

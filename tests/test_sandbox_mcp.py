"""The sandbox tools through a real MCP client (in memory)."""

from __future__ import annotations

import base64
from pathlib import Path

import anyio
import pytest
from conftest import payload
from mcp import Client
from sandbox_fixtures import CANARY, ISOLATING, leftovers, require, sandbox_server

from mltrainer.state.settings import Settings


@pytest.mark.anyio
async def test_run_code_over_mcp(home: Path) -> None:
    require("bwrap")
    server, _ = sandbox_server(home)
    async with Client(server) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert {"run_code", "sandbox_info", "reset_session", "close_session"} <= set(tools)
        assert tools["run_code"].output_schema is not None
        assert tools["run_code"].description and "sandbox" in tools["run_code"].description

        info = await client.call_tool("sandbox_info", {})
        assert info.structured_content["backend"] == "bwrap"
        assert "bubblewrap" in info.structured_content["reason"]

        code = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nvalue = 41\nprint('drawn')"
        result = await client.call_tool("run_code", {"code": code, "session": "mcp"})
        assert not result.is_error
        data = result.structured_content
        assert data["status"] == "ok" and data["stdout"] == "drawn\n"
        assert data["backend"] == "bwrap" and data["isolated"] is True
        images = [block for block in result.content if block.type == "image"]
        assert len(images) == 1 and images[0].mime_type == "image/png"
        assert base64.b64decode(images[0].data).startswith(b"\x89PNG")

        again = await client.call_tool("run_code", {"code": "value + 1", "session": "mcp"})
        assert again.structured_content["stdout"] == "42\n"

        failed = await client.call_tool("run_code", {"code": "1/0"})
        assert not failed.is_error and failed.structured_content["status"] == "error"
        assert "ZeroDivisionError" in failed.structured_content["stderr"]

        assert "read stderr" in failed.structured_content["next_step"]

        closed = await client.call_tool("close_session", {"session": "mcp"})
        assert closed.structured_content["closed"] is True


@pytest.mark.anyio
async def test_refusals_are_tool_errors_that_say_what_to_do(home: Path) -> None:
    require("bwrap")
    server, _ = sandbox_server(home)
    async with Client(server) as client:
        network = await client.call_tool("run_code", {"code": "1", "network": True})
        assert network.is_error and "MLTRAINER_SANDBOX_ALLOW_NETWORK" in network.content[0].text
        outside = await client.call_tool("run_code", {"code": "1", "files": ["/etc/passwd"]})
        assert outside.is_error and "MLTRAINER_DATA_ROOTS" in outside.content[0].text
        missing = await client.call_tool("close_session", {"session": "nope"})
        assert missing.is_error and "sandbox_info" in missing.content[0].text
        bad = await client.call_tool("run_code", {"code": "1", "timeout_s": -1})
        assert bad.is_error
        # The server keeps serving after refusals.
        fine = await client.call_tool("run_code", {"code": f"print({CANARY!r})"})
        assert fine.structured_content["status"] == "ok"


@pytest.mark.anyio
async def test_the_manager_is_created_lazily_without_a_lifespan_field(home: Path) -> None:
    from contextlib import asynccontextmanager

    from mcp.server import MCPServer

    from mltrainer.server import sandbox as sandbox_module
    from mltrainer.server.app import build_context
    from mltrainer.state.settings import Settings

    require("bwrap")

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> object:  # type: ignore[type-arg]
        context = build_context(Settings(home=home, sandbox="bwrap"))
        yield context
        context.sandbox.close()  # type: ignore[attr-defined]
        context.close()

    mcp: MCPServer = MCPServer("lazy", lifespan=lifespan)  # type: ignore[type-arg]
    sandbox_module.register(mcp)
    async with Client(mcp) as client:
        result = await client.call_tool("run_code", {"code": "print(3)"})
        assert result.structured_content["stdout"] == "3\n"


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ISOLATING)
async def test_a_cancelled_run_code_stops_its_sandbox(home: Path, backend: str) -> None:
    require(backend)
    server, managers = sandbox_server(home, backend)
    started = home / "sandbox" / "sessions" / "cancel" / "started"
    code = "open('started', 'w').close()\nwhile True: pass"
    async with Client(server) as client:
        await client.call_tool("run_code", {"code": "kept = 1", "session": "cancel"})
        async with anyio.create_task_group() as group:
            group.start_soon(client.call_tool, "run_code", {"code": code, "session": "cancel"})
            with anyio.fail_after(120):
                while not started.exists():
                    await anyio.sleep(0.05)
            group.cancel_scope.cancel()  # the client sends notifications/cancelled
        manager = managers[0]
        assert await anyio.to_thread.run_sync(leftovers, manager) == ([], [])
        killed = manager.store.runs()[0]  # type: ignore[union-attr]
        assert killed.status == "killed" and "Cancelled by the client" in (killed.reason or "")
        again = await client.call_tool(
            "run_code", {"code": "print('kept' in globals())", "session": "cancel"}
        )
        assert payload(again)["stdout"] == "False\n"  # the session goes on, afresh


@pytest.mark.anyio
async def test_a_long_run_code_is_a_job_to_poll_and_runs_are_not_listed_as_jobs(
    home: Path,
) -> None:
    from conftest import connect

    require("bwrap")
    settings = Settings(home=home, sandbox="bwrap")
    async with connect("memory", settings) as client:
        quick = payload(await client.call_tool("run_code", {"code": "print(1)"}))
        assert quick["status"] == "ok" and quick["job_id"] is None and quick["run_id"]
        code = "import time\ntime.sleep(0.5)\nprint('slow done')"
        started = payload(await client.call_tool("run_code", {"code": code, "timeout_s": 600}))
        assert started["status"] == "running" and started["job_id"]
        assert "job_status" in started["next_step"]
        job_id = started["job_id"]
        with anyio.fail_after(300):
            while True:
                view = payload(
                    await client.call_tool("job_status", {"job_id": job_id, "wait_s": 5})
                )
                if view["status"] != "running":
                    break
        assert view["status"] == "succeeded" and view["kind"] == "code"
        assert view["result"]["stdout"] == "slow done\n" and view["result"]["job_id"] == job_id
        jobs = payload(await client.call_tool("list_jobs", {}))
        assert [job["job_id"] for job in jobs["jobs"]] == [job_id]  # the quick run is no job
        info = payload(await client.call_tool("sandbox_info", {}))
        assert {run["run_id"] for run in info["recent_runs"]} >= {
            quick["run_id"],
            started["run_id"],
        }


@pytest.mark.anyio
async def test_cancel_job_stops_a_code_job_through_the_manager(home: Path) -> None:
    """cancel_job (owned by the jobs tools) calls SandboxManager.cancel_job for code jobs."""
    require("bwrap")
    server, managers = sandbox_server(home)
    async with Client(server) as client:
        code = "open('started', 'w').close()\nwhile True: pass"
        started = payload(await client.call_tool("run_code", {"code": code, "timeout_s": 900}))
        manager = managers[0]
        flag = Path(started["workspace"]) / "started"
        with anyio.fail_after(120):
            while not flag.exists():
                await anyio.sleep(0.05)
        job = await anyio.to_thread.run_sync(manager.cancel_job, started["job_id"])
        assert job.status == "cancelled" and job.result is not None
        assert job.result["status"] == "killed" and "cancel_job" in (job.error or "")
        assert await anyio.to_thread.run_sync(leftovers, manager) == ([], [])

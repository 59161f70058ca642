"""The sandbox tools through a real MCP client (in memory)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from mcp import Client
from sandbox_fixtures import CANARY, require, sandbox_server


@pytest.mark.anyio
async def test_run_code_over_mcp(home: Path) -> None:
    require("bwrap")
    async with Client(sandbox_server(home)) as client:
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

        closed = await client.call_tool("close_session", {"session": "mcp"})
        assert closed.structured_content["closed"] is True


@pytest.mark.anyio
async def test_refusals_are_tool_errors_that_say_what_to_do(home: Path) -> None:
    require("bwrap")
    async with Client(sandbox_server(home)) as client:
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

"""The protocol as outside clients see it: unknown arguments refused by every tool, resource
errors as invalid params (no traceback), prompts that exist when the capability says so, and
a server that exits when its client goes away, even with a call in flight."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from conftest import connect, error_text, payload
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

from mltrainer.server.context import build_context
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store

CONSOLE_SCRIPT = Path(sys.executable).with_name("mltrainer-mcp")


@pytest.mark.anyio
async def test_every_tool_refuses_unknown_arguments_naming_the_valid_ones(
    settings: Settings,
) -> None:
    async with connect("memory", settings) as client:
        tools = (await client.list_tools()).tools
        for tool in tools:
            assert tool.input_schema.get("additionalProperties") is False, tool.name
            result = await client.call_tool(tool.name, {"engine": "modal"})
            text = error_text(result)
            assert "Unknown argument 'engine'" in text, (tool.name, text)
            for name in tool.input_schema.get("properties", {}):
                assert name in text, (tool.name, name, text)


@pytest.mark.anyio
async def test_a_misspelled_train_argument_starts_no_job(
    settings: Settings, churn_csv: Path
) -> None:
    async with connect("memory", settings) as client:
        args = {"dataset": str(churn_csv), "target": "label", "wait_s": 0}
        for wrong in ({"engine": "modal"}, {"time_budget": 10}, {"Target": "label"}):
            text = error_text(await client.call_tool("train_model", {**args, **wrong}))
            assert f"Unknown argument {next(iter(wrong))!r}" in text
            assert "time_budget_s" in text  # the valid names, so the caller can correct itself
        assert payload(await client.call_tool("list_jobs", {}))["count"] == 0


@pytest.mark.anyio
async def test_unknown_job_or_model_resources_are_invalid_params_without_traceback(
    settings: Settings, tmp_path: Path
) -> None:
    stderr_path = tmp_path / "stderr.txt"
    server = StdioServerParameters(
        command=str(CONSOLE_SCRIPT), env={"MLTRAINER_HOME": str(settings.home)}, cwd=str(tmp_path)
    )
    uris = {
        "mltrainer://jobs/job_nope": "list_jobs",
        "mltrainer://jobs/job_nope/log": "list_jobs",
        "mltrainer://jobs/job_nope/plan": "list_jobs",
        "mltrainer://models/model_nope/card": "train_model",
        "mltrainer://datasets/ds_nope": "download_dataset",
    }
    with open(stderr_path, "w") as stderr:
        async with Client(stdio_client(server, errlog=stderr)) as client:
            for uri, advice in uris.items():
                with pytest.raises(MCPError) as caught:
                    await client.read_resource(uri)
                assert caught.value.error.code == INVALID_PARAMS, uri
                assert "No " in caught.value.error.message and advice in caught.value.error.message
    assert "Traceback" not in stderr_path.read_text()


@pytest.mark.anyio
async def test_prompts_exist_as_the_capability_says(settings: Settings, churn_csv: Path) -> None:
    settings.ensure_dirs()
    store = Store(settings.db_path)
    job = store.create_job("train", {"dataset": str(churn_csv), "target": "label"})
    store.finish_job(job.id, "failed", error="The worker stopped without finishing 3 times.")
    store.close()
    async with connect("memory", settings) as client:
        assert client.server_capabilities.prompts is not None
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(prompts) == {"train_on_file", "explain_job"}
        assert all(p.description for p in prompts.values())

        train = await client.get_prompt(
            "train_on_file", {"dataset": str(churn_csv), "target": "label"}
        )
        text = train.messages[0].content.text
        assert str(churn_csv) in text and "'label'" in text
        assert all(tool in text for tool in ("profile_dataset", "train_model", "job_status"))

        explain = await client.get_prompt("explain_job", {"job_id": job.id})
        text = explain.messages[0].content.text
        assert job.id in text and "stopped without finishing 3 times" in text
        with pytest.raises(MCPError) as caught:
            await client.get_prompt("explain_job", {"job_id": "job_nope"})
        assert caught.value.error.code == INVALID_PARAMS
        assert "list_jobs" in caught.value.error.message


# -- exit when the client goes away ----------------------------------------------------------


class StallingHTTPServer:
    """Answers every GET with the start of a huge body, then sends nothing more until closed:
    a download that would keep its thread busy for minutes."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/big.csv"
        self.requested = threading.Event()
        self.released = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.released.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 1000000000\r\n"
                b"\r\na,b\n1,2\n"
            )
            if head.startswith(b"GET"):
                self.requested.set()
                self.released.wait()

    def close(self) -> None:
        self.released.set()
        self.sock.close()


@pytest.fixture
def stalling_server() -> Iterator[StallingHTTPServer]:
    server = StallingHTTPServer()
    yield server
    server.close()


def rpc(proc: subprocess.Popen[bytes], message: dict) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
    proc.stdin.flush()


def test_the_server_exits_on_stdin_eof_with_a_call_in_flight(
    home: Path, tmp_path: Path, stalling_server: StallingHTTPServer
) -> None:
    """Regression: a blocking call (here a download that stalls) kept the server running after
    its client had gone, until the call ended by itself (minutes)."""
    proc = subprocess.Popen(
        [str(CONSOLE_SCRIPT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        # A plain-http download from this machine is what stalls here; the guard allows it
        # only when the person says so.
        env={**os.environ, "MLTRAINER_HOME": str(home), "MLTRAINER_ALLOW_LOOPBACK_HTTP": "1"},
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        rpc(proc, {"id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        }})  # fmt: skip
        assert json.loads(proc.stdout.readline())["id"] == 1
        rpc(proc, {"method": "notifications/initialized"})
        rpc(proc, {"id": 2, "method": "tools/call", "params": {
            "name": "download_dataset", "arguments": {"ref": stalling_server.url},
        }})  # fmt: skip
        assert stalling_server.requested.wait(120), "the download never started"
        proc.stdin.close()  # the client goes away with the call in flight
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- the shutdown path others hook into --------------------------------------------------------


@pytest.mark.anyio
async def test_a_cancelled_blocking_call_stops_waiting_and_stops_its_work(
    settings: Settings,
) -> None:
    app = build_context(settings)
    started, stopped = threading.Event(), threading.Event()

    def work() -> str:
        started.set()
        stopped.wait(600)  # blocks like a sandbox run or a stalled download
        return "stopped" if stopped.is_set() else "ran out"

    try:
        assert await app.run_blocking(lambda: 6 * 7) == 42
        with pytest.raises(ZeroDivisionError):
            await app.run_blocking(lambda: 1 / 0)
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: app.run_blocking(work, on_cancel=stopped.set))
            await anyio.to_thread.run_sync(started.wait, 60)
            group.cancel_scope.cancel()  # e.g. notifications/cancelled, or the client gone
        assert stopped.is_set()
    finally:
        app.close()


def test_shutdown_runs_every_hook_newest_first_even_when_one_fails(settings: Settings) -> None:
    app = build_context(settings)
    calls: list[str] = []
    app.on_shutdown(lambda: calls.append("first"))
    app.on_shutdown(lambda: calls.append(str(1 / 0)))
    app.on_shutdown(lambda: calls.append("last" if app.stopping.is_set() else "too early"))
    app.close()
    assert calls == ["last", "first"]

"""Shared fixtures: a state directory per test, servers over every transport, small datasets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from mltrainer.state.settings import Settings

REPO = Path(__file__).resolve().parent.parent
# Tests start hundreds of servers, most of which never train: a spare worker for each would load
# the training libraries for nothing. tests/test_spare_worker.py turns it on (its default).
os.environ.setdefault("MLTRAINER_SPARE_WORKER", "false")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh state directory; the test runs from tmp_path (an allowed data root)."""
    path = tmp_path / "home"
    monkeypatch.setenv("MLTRAINER_HOME", str(path))
    monkeypatch.chdir(tmp_path)
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings(home=home)


def write_classification_csv(path: Path, rows: int = 400, seed: int = 0) -> Path:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    colour = rng.choice(["red", "green", "blue"], size=rows)
    label = np.where(
        x1 + 0.5 * x2 + (colour == "red") + rng.normal(scale=0.5, size=rows) > 0.3, "yes", "no"
    )
    pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "label": label}).to_csv(path, index=False)
    return path


@pytest.fixture
def churn_csv(tmp_path: Path) -> Path:
    return write_classification_csv(tmp_path / "churn.csv")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        "MLTRAINER_HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "MLTRAINER_SPARE_WORKER": os.environ["MLTRAINER_SPARE_WORKER"],
    }
    env.update(extra)
    return env


@contextmanager
def server_process(
    home: Path, cwd: Path, host: str = "127.0.0.1", **env: str
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """``mltrainer serve --http`` on ``host`` with ``env`` added, once it listens; yields the
    process (to kill it), its MCP URL and the file its stderr goes to. Stopped on exit."""
    port = free_port()
    log = cwd / f"server-{host}-{port}.log"
    command = ["serve", "--http", "--host", host, "--port", str(port)]
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "mltrainer.server.cli", *command],
            env={**os.environ, **server_env(home, **env)},
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            with socket.socket() as sock:
                if sock.connect_ex((host, port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP server did not start: {log.read_text()}")
            time.sleep(0.1)
        yield proc, f"http://{host}:{port}/mcp", log
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


@contextmanager
def serve_http(
    home: Path, cwd: Path, host: str = "127.0.0.1", **env: str
) -> Iterator[tuple[str, Path]]:
    """``mltrainer serve --http`` (server_process); yields its MCP URL and its stderr file."""
    with server_process(home, cwd, host, **env) as (_, url, log):
        yield url, log


@pytest.fixture
def http_server(home: Path, tmp_path: Path) -> Iterator[str]:
    """``mltrainer serve --http`` in a subprocess; yields its MCP URL."""
    with server_process(home, tmp_path) as (_, url, _log):
        yield url


@asynccontextmanager
async def connect(
    transport: str, settings: Settings, http_url: str | None = None, **client_kwargs: Any
) -> AsyncIterator[Any]:
    """An MCP client connected to a fresh server over ``transport``."""
    from mcp import Client, StdioServerParameters

    from mltrainer.server.app import create_server

    if transport == "memory":
        target: Any = create_server(settings)
    elif transport == "stdio":
        target = StdioServerParameters(
            command=sys.executable,
            args=["-P", "-m", "mltrainer.server.cli", "serve"],
            env=server_env(settings.home),
            cwd=str(Path.cwd()),
        )
    elif transport == "transport":  # a ready-made client transport, passed as http_url
        target = http_url
    else:
        assert http_url is not None
        async with (
            authorized_http(http_url, http_token(settings)) as transport_,
            Client(transport_, **client_kwargs) as client,
        ):
            yield client
        return
    async with Client(target, **client_kwargs) as client:
        yield client


def http_token(settings: Settings) -> str:
    """The bearer token an HTTP server on this state directory generated at its first start."""
    return settings.http_token_path.read_text().strip()


@asynccontextmanager
async def authorized_http(url: str, token: str | None, **headers: str) -> AsyncIterator[Any]:
    """A streamable-HTTP client transport sending ``Authorization: Bearer <token>``."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    timeout = httpx2.Timeout(30, read=300)
    async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
        yield streamable_http_client(url, http_client=http)


def payload(result: Any) -> dict[str, Any]:
    """The structured result of a successful tool call."""
    assert not result.is_error, [getattr(c, "text", c) for c in result.content]
    assert result.structured_content is not None
    return dict(result.structured_content)


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    return " ".join(getattr(c, "text", "") for c in result.content)


async def train_until_done(client: Any, arguments: dict[str, Any], **call_kwargs: Any) -> Any:
    """Call train_model, then job_status until the job has ended (no call may wait longer
    than 50 s); returns the last result, with its images."""
    result = await client.call_tool("train_model", {**arguments, "wait_s": 45}, **call_kwargs)
    while not result.is_error and result.structured_content["status"] in ("queued", "running"):
        job_id = result.structured_content["job_id"]
        plots = arguments.get("plots", True)
        result = await client.call_tool(
            "job_status", {"job_id": job_id, "wait_s": 45, "plots": plots}, **call_kwargs
        )
    return result

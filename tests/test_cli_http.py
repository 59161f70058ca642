"""The human CLI and the HTTP transport: demo, loopback-only binding, bearer tokens."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import connect, free_port, payload, server_env

from mltrainer.state.settings import Settings


def run_cli(*args: str, home: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-m", "mltrainer.server.cli", *args],
        env={**os.environ, **server_env(home)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_non_loopback_bind_is_refused_without_allow_remote_and_token(home: Path) -> None:
    for extra in ([], ["--allow-remote"], ["--token", "t0ken-123456"]):
        done = run_cli(
            "serve", "--http", "--host", "0.0.0.0", "--port", str(free_port()), *extra, home=home
        )
        assert done.returncode == 2, extra
        assert "--allow-remote" in done.stderr and "token" in done.stderr


def wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert proc.poll() is None, "server exited"
        time.sleep(0.1)
    raise AssertionError("server did not start")


@pytest.mark.anyio
async def test_bearer_token_is_required_when_set(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mltrainer.server.cli",
            "serve",
            "--http",
            "--port",
            str(port),
            "--token",
            "s3cret-t0ken",
        ],
        env={**os.environ, **server_env(settings.home)},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        url = f"http://127.0.0.1:{port}/mcp"
        request = urllib.request.Request(
            url, data=b"{}", headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(request, timeout=5)
        assert denied.value.code == 401
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        http = httpx2.AsyncClient(headers={"Authorization": "Bearer s3cret-t0ken"})
        async with connect(
            "transport", settings, streamable_http_client(url, http_client=http)
        ) as client:
            assert payload(await client.call_tool("list_jobs", {}))["count"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_secrets_cli_lists_names_never_values(home: Path) -> None:
    done = run_cli("secrets", "list", home=home)
    assert done.returncode == 0 and "secret://HF_TOKEN" in done.stdout
    bad = run_cli("secrets", "set", home=home)
    assert bad.returncode != 0 and "NAME" in bad.stderr


def test_demo_trains_and_predicts_offline(home: Path) -> None:
    done = run_cli("demo", "--time-budget", "5", home=home, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validation roc_auc" in done.stdout and "held-out test rows" in done.stdout
    assert "Predictions for 10 new rows" in done.stdout

"""Shutdown stops every sandbox a server started, on every backend, however the server ends.

The server runs as a real subprocess over stdio, spoken to line by line: a client that can
close the pipe or vanish the way a real one does (the SDK's client would terminate the
server itself on exit, hiding what these tests look for).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from sandbox_fixtures import (
    ISOLATING,
    containers_of,
    require,
    wait_gone,
    wait_no_containers,
    wait_until,
)

from mltrainer.sandbox.backends import RUNNER_INSIDE
from mltrainer.sandbox.containers import label_args
from mltrainer.sandbox.owner import Owner, process_started
from mltrainer.sandbox.runs import mark_lost_runs
from mltrainer.server.app import build_context
from mltrainer.state.models import TERMINAL
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command

SPIN = "open('{flag}', 'w').close()\nwhile True: pass"
ALL_BACKENDS = (*ISOLATING, "process")


class StdioServer:
    def __init__(self, home: Path, backend: str, log: Path) -> None:
        env = {**os.environ, "MLTRAINER_HOME": str(home), "MLTRAINER_SANDBOX": backend}
        self.home = home
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "mltrainer.server.cli", "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            cwd=home.parent,
        )
        self._next_id = 0

    def send(self, method: str, params: dict[str, Any], *, notify: bool = False) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        if not notify:
            message["id"] = self._next_id
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()
        return self._next_id

    def answer(self, request_id: int) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            assert line, "the server closed stdout"
            message = json.loads(line)
            if message.get("id") == request_id:
                return dict(message)

    def start(self) -> None:
        client = {"name": "lifecycle-test", "version": "0"}
        params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": client}
        self.answer(self.send("initialize", params))
        self.send("notifications/initialized", {}, notify=True)

    def run_code(self, arguments: dict[str, Any]) -> int:
        return self.send("tools/call", {"name": "run_code", "arguments": arguments})

    def sandbox_instance(self) -> str:
        """The instance id the server's sandboxes carry (the last word of the runner's argv)."""
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                cmdline = child.cmdline()
            except psutil.Error:  # gone meanwhile
                continue
            if RUNNER_INSIDE in cmdline or any(part.endswith("runner.py") for part in cmdline):
                return cmdline[-1]
        raise AssertionError("no sandbox process under the server")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=60)
        self.log.close()


@pytest.fixture
def stdio_server(home: Path, tmp_path: Path) -> Iterator[Any]:
    servers: list[StdioServer] = []

    def start(backend: str) -> StdioServer:
        if backend != "process":
            require(backend)
        server = StdioServer(home, backend, tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.close()


def busy_server(start: Any, backend: str) -> tuple[StdioServer, str, str]:
    """A server with a code job and a run_code call in flight; (server, job_id, instance)."""
    server = start(backend)
    job = server.answer(server.run_code({"code": SPIN.format(flag="job"), "timeout_s": 3600}))
    started = job["result"]["structuredContent"]
    assert started["status"] == "running", started
    server.run_code({"code": SPIN.format(flag="call"), "session": "s", "timeout_s": 50})
    flags = [
        Path(started["workspace"]) / "job",
        server.home / "sandbox" / "sessions" / "s" / "call",
    ]
    assert wait_until(lambda: all(flag.exists() for flag in flags), 180)
    return server, started["job_id"], server.sandbox_instance()


def assert_nothing_left(instance: str) -> None:
    assert wait_gone(instance) == []
    assert wait_no_containers(instance) == []


@pytest.mark.parametrize("backend", ISOLATING)
def test_the_server_exits_on_stdin_eof_with_calls_in_flight(
    stdio_server: Any, backend: str
) -> None:
    server, job_id, instance = busy_server(stdio_server, backend)
    assert server.proc.stdin is not None
    server.proc.stdin.close()
    # The call in flight has a 50 s timeout and the job an hour: well before either, the
    # server must be gone and have stopped both.
    assert server.proc.wait(timeout=40) == 0
    assert_nothing_left(instance)
    store = Store(server.home / "mltrainer.db")
    try:
        job = store.get_job(job_id)
        assert job.status == "failed" and "shutting down" in (job.error or "")
    finally:
        store.close()


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_no_sandbox_outlives_a_server_stopped_by_sigterm(stdio_server: Any, backend: str) -> None:
    server, job_id, instance = busy_server(stdio_server, backend)
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=60)
    assert_nothing_left(instance)
    # The next server to start fails the code job the dead one left 'running', saying why.
    context = build_context(Settings(home=server.home, sandbox=backend))  # type: ignore[arg-type]
    try:
        assert context.recovered.wait(60)  # the first supervision round, after the handshake
        job = context.store.get_job(job_id)
        assert job.status == "failed"
        assert "stopped before it finished" in (job.error or ""), job.error
    finally:
        context.close()


OTHER_SERVER = """
import sys, time
from pathlib import Path
from mltrainer.sandbox.manager import SandboxManager
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store

settings = Settings(home=Path(sys.argv[1]), sandbox=sys.argv[2])
settings.ensure_dirs()
manager = SandboxManager(settings, store=Store(settings.db_path))
started = manager.start_job("open('started', 'w').close()\\nwhile True: pass", timeout_s=3600)
print(started.job_id, started.workspace, manager.owner.instance, flush=True)
time.sleep(3600)
"""


@pytest.mark.parametrize("backend", ISOLATING)
def test_a_code_job_is_failed_only_once_its_server_has_died(home: Path, backend: str) -> None:
    require(backend)
    home.mkdir(parents=True, exist_ok=True)
    other = subprocess.Popen(
        [sys.executable, "-c", OTHER_SERVER, str(home), backend],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None
        job_id, workspace, instance = other.stdout.readline().split()
        assert wait_until((Path(workspace) / "started").exists, 180)
        store = Store(home / "mltrainer.db")
        try:
            assert mark_lost_runs(store) == []  # a live server's job is left alone
            assert store.get_job(job_id).status == "running"
            other.send_signal(signal.SIGKILL)  # a crash: nothing of the server runs after it
            other.wait(timeout=60)
            assert_nothing_left(instance)
            assert f"{job_id}: failed" in mark_lost_runs(store)
            job = store.get_job(job_id)
            assert job.status in TERMINAL and "stopped before it finished" in (job.error or "")
            assert store.run_of_job(job_id).status == "lost"  # type: ignore[union-attr]
        finally:
            store.close()
    finally:
        if other.poll() is None:
            other.kill()
            other.wait(timeout=60)


def _container(owner: Owner) -> str:
    argv = ["docker", "run", "-d", "--network", "none", *label_args(owner)]
    argv += ["-v", "/usr:/usr:ro", "mltrainer-sandbox:latest", "/usr/bin/sleep", "600"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_containers_of_a_dead_server_are_removed_when_a_server_starts(home: Path) -> None:
    require("docker")
    gone = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    started = process_started(gone.pid)
    gone.wait(timeout=60)
    host = socket.gethostname()
    dead = Owner(instance=uuid.uuid4().hex[:12], pid=gone.pid, started=started or 0.0, host=host)
    live = Owner(
        instance=uuid.uuid4().hex[:12], pid=os.getpid(), started=Owner.current().started, host=host
    )
    elsewhere = Owner(instance=uuid.uuid4().hex[:12], pid=gone.pid, started=0.0, host=f"not-{host}")
    created = [_container(owner) for owner in (dead, live, elsewhere)]
    try:
        context = build_context(Settings(home=home))
        try:
            assert context.recovered.wait(120)  # the first supervision round, after the handshake
        finally:
            context.close()
        assert wait_no_containers(dead.instance) == []
        assert containers_of(live.instance) and containers_of(elsewhere.instance)
    finally:
        subprocess.run(["docker", "rm", "-f", *created], capture_output=True, timeout=120)

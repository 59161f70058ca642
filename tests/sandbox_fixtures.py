"""Fixtures for the sandbox tests: a manager per available backend, with small limits.

Isolation tests run on every isolating backend the machine has (bwrap, Docker); a backend
that cannot run here is skipped with the reason printed, never silently.

Other servers (and other people's tests) may run sandboxes on the same machine at the same
time: every check for leftover processes or containers is scoped to the manager under test,
by its instance id, which each of its sandbox processes carries on its command line and each
of its containers as a label.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import psutil
import pytest
from mcp.server import MCPServer

from mltrainer.sandbox import mplcache
from mltrainer.sandbox.containers import LABEL
from mltrainer.sandbox.limits import Cgroup, Limits
from mltrainer.sandbox.manager import SandboxManager
from mltrainer.sandbox.selection import choose_backend
from mltrainer.server.app import AppContext, build_context
from mltrainer.state.masking import Masker
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store

CANARY_NAME = "SANDBOX_CANARY"
CANARY = "sk-canary-7f3a9c2e41d8b6"
TEST_LIMITS = Limits(memory_mb=1024, max_processes=64, output_bytes=64 * 1024, tmpfs_mb=64)
ISOLATING = ("bwrap", "docker")


@functools.cache
def backend_problem(name: str) -> str | None:
    """None when the backend can run here, else why not."""
    settings = Settings(home=Path("/tmp/mltrainer-sandbox-probe"), sandbox=name)  # type: ignore[arg-type]
    choice = choose_backend(settings)
    if choice.backend is None or choice.backend.name != name:
        return choice.candidates.get(name, choice.reason)
    return None


@functools.cache
def cgroups_usable() -> bool:
    group = Cgroup.create(Limits())
    if group is None:
        return False
    group.remove()
    return True


def require(name: str) -> None:
    problem = backend_problem(name)
    if problem is not None:
        print(f"\n[sandbox tests] {name} backend unavailable: {problem}", file=sys.stderr)
        pytest.skip(f"{name} sandbox unavailable here: {problem}")


@functools.cache
def shared_mpl_cache() -> Path:
    """One matplotlib font cache for the whole test run, built on first use."""
    path = Path(tempfile.gettempdir()) / f"mltrainer-test-mplcache-{os.getuid()}"
    mplcache.build(path)
    return path


def make_manager(home: Path, backend: str, **kwargs: object) -> SandboxManager:
    settings = Settings(home=home, sandbox=backend)  # type: ignore[arg-type]
    settings.ensure_dirs()
    masker = Masker({CANARY_NAME: CANARY})
    store = Store(settings.db_path, masker)
    options: dict[str, object] = {
        "limits": TEST_LIMITS,
        "mpl_cache": shared_mpl_cache(),
        **kwargs,
    }
    return SandboxManager(settings, masker, store, **options)  # type: ignore[arg-type]


@pytest.fixture(params=ISOLATING)
def isolated(request: pytest.FixtureRequest, home: Path) -> Iterator[SandboxManager]:
    """A manager on each isolating backend."""
    require(request.param)
    manager = make_manager(home, request.param)
    try:
        yield manager
    finally:
        manager.close()
        manager.store.close()  # type: ignore[union-attr]


@pytest.fixture
def bwrap(home: Path) -> Iterator[SandboxManager]:
    require("bwrap")
    manager = make_manager(home, "bwrap")
    try:
        yield manager
    finally:
        manager.close()
        manager.store.close()  # type: ignore[union-attr]


def processes_with(text: str) -> list[int]:
    """Pids of host processes whose command line contains ``text``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if any(text in part for part in cmdline):
            found.append(proc.pid)
    return found


def wait_until(condition: Callable[[], object], seconds: float = 60.0) -> bool:
    """Poll ``condition`` until it is true or ``seconds`` pass (generous: the machine is busy)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wait_gone(text: str, seconds: float = 60.0) -> list[int]:
    """Wait until no process's command line contains ``text``; the survivors, if any."""
    wait_until(lambda: not processes_with(text), seconds)
    return processes_with(text)


def containers_of(instance: str) -> list[str]:
    """Containers (running or not) of one sandbox manager, by its instance label."""
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={LABEL}={instance}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return listed.stdout.split() if listed.returncode == 0 else []


def wait_no_containers(instance: str, seconds: float = 60.0) -> list[str]:
    wait_until(lambda: not containers_of(instance), seconds)
    return containers_of(instance)


def leftovers(manager: SandboxManager) -> tuple[list[int], list[str]]:
    """The manager's sandbox processes and containers still there after a wait (none may be)."""
    instance = manager.owner.instance
    return wait_gone(instance), wait_no_containers(instance)


def sandbox_server(
    home: Path, backend: str = "bwrap"
) -> tuple[MCPServer[AppContext], list[SandboxManager]]:
    """A minimal MCP server with only the sandbox tools, and (once started) its manager."""
    from mltrainer.server import sandbox as sandbox_module

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppContext]) -> AsyncIterator[AppContext]:
        context = build_context(Settings(home=home, sandbox=backend))  # type: ignore[arg-type]
        manager = SandboxManager(
            context.settings, context.masker, context.store, mpl_cache=shared_mpl_cache()
        )
        context.sandbox = manager
        managers.append(manager)
        try:
            yield context
        finally:
            context.close()

    managers: list[SandboxManager] = []
    mcp: MCPServer[AppContext] = MCPServer("sandbox-test", lifespan=lifespan)
    sandbox_module.register(mcp)
    return mcp, managers

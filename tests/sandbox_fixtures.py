"""Fixtures for the sandbox tests: a manager per available backend, with small limits.

Isolation tests run on every isolating backend the machine has (bwrap, Docker); a backend
that cannot run here is skipped with the reason printed, never silently.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp.server import MCPServer

from mltrainer.sandbox import mplcache
from mltrainer.sandbox.limits import Cgroup, Limits
from mltrainer.sandbox.manager import SandboxManager, choose_backend
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
    needle = text.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if needle in handle.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def wait_gone(text: str, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = processes_with(text)
        if not left:
            return []
        time.sleep(0.05)
    return processes_with(text)


def sandbox_server(home: Path, backend: str = "bwrap") -> MCPServer[AppContext]:
    """A minimal MCP server with only the sandbox tools."""
    from mltrainer.server import sandbox as sandbox_module

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppContext]) -> AsyncIterator[AppContext]:
        context = build_context(Settings(home=home, sandbox=backend))  # type: ignore[arg-type]
        # As the lead's lifespan will do; server.sandbox creates one lazily when absent.
        manager = SandboxManager(
            context.settings, context.masker, context.store, mpl_cache=shared_mpl_cache()
        )
        setattr(context, "sandbox", manager)  # noqa: B010 - AppContext has no field yet
        try:
            yield context
        finally:
            manager.close()
            context.close()

    mcp: MCPServer[AppContext] = MCPServer("sandbox-test", lifespan=lifespan)
    sandbox_module.register(mcp)
    return mcp

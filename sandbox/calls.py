"""run_code calls on their way through the manager, and what stops them.

A ``StopSignal`` is what another thread uses to stop one call, whenever the stop comes.
``InFlight`` knows every call running now and its interpreter, so that shutdown can stop them
all at once and wait for them to record their results.

The MCP layer (``notifications/cancelled``, shutdown) and ``cancel_job`` hold one of these for
a call in flight; the manager attaches the call's interpreter to it once it exists. A stop
before that point is remembered: the interpreter is stopped the moment it is attached, so a
call cancelled while it waits for its session or its sandbox to start never runs.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mltrainer.sandbox.kernel import Kernel
from mltrainer.state.errors import SandboxUnavailable
from mltrainer.state.models import RunRecord

SHUTTING_DOWN = "Stopped: the server is shutting down."


class Stoppable(Protocol):
    def stop(self, reason: str) -> None: ...


class StopSignal:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._target: Stoppable | None = None
        self.reason: str | None = None

    @property
    def stopped(self) -> bool:
        return self.reason is not None

    def stop(self, reason: str) -> None:
        """SIGKILL the call's sandbox now (or as soon as it starts). Never blocks."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
            target = self._target
        if target is not None:
            target.stop(reason)

    def attach(self, target: Stoppable) -> None:
        with self._lock:
            self._target = target
            reason = self.reason
        if reason is not None:
            target.stop(reason)

    def detach(self) -> None:
        with self._lock:
            self._target = None


@dataclass
class Call:
    """A validated run_code request, and what the manager learns about it on the way."""

    code: str
    timeout_s: float
    mounts: list[Path]
    network: bool
    session: str | None = None
    stop: StopSignal = field(default_factory=StopSignal)
    job_id: str | None = None  # set when it runs as a code job
    workspace: Path | None = None  # a session-less call's, when made before it runs
    record: RunRecord | None = None  # its row in the runs table, once written


class InFlight:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._live: set[Kernel] = set()
        self._count = 0
        self._reapers: list[threading.Thread] = []
        self.closed = False

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Counts a call from its start to its recorded result; refused after shutdown."""
        with self._cond:
            if self.closed:
                raise SandboxUnavailable(SHUTTING_DOWN, next_step="Run again once it restarted.")
            self._count += 1
        try:
            yield
        finally:
            with self._cond:
                self._count -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def tracking(self, kernel: Kernel, stop: StopSignal) -> Iterator[None]:
        """While a call runs, its interpreter can be stopped by its signal and by shutdown."""
        with self._cond:
            self._live.add(kernel)
            closed = self.closed
        if closed:
            kernel.stop(SHUTTING_DOWN)
        stop.attach(kernel)
        try:
            yield
        finally:
            stop.detach()
            with self._cond:
                self._live.discard(kernel)

    def reap_later(self, kernel: Kernel) -> None:
        """Kill the interpreter; reap its processes (and container, cgroup) in the background."""
        reaper = kernel.kill(wait=False)
        if reaper is not None:
            with self._cond:
                self._reapers = [t for t in self._reapers if t.is_alive()] + [reaper]

    def shut(self) -> bool:
        """Refuse new calls and stop every running one; False when already shut."""
        with self._cond:
            if self.closed:
                return False
            self.closed = True
            live = list(self._live)
        for kernel in live:
            kernel.stop(SHUTTING_DOWN)
        return True

    def drain(self, deadline: float) -> None:
        """Wait (until the monotonic ``deadline``) for the stopped calls to finish."""
        with self._cond:
            while self._count and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            reapers, self._reapers = self._reapers, []
        for reaper in reapers:
            reaper.join(timeout=max(deadline - time.monotonic(), 1.0))

"""Downloads that cannot starve the server: a few at a time, each with an overall deadline.

Tool calls run on the server's worker threads (anyio's default limiter: 40 of them). A source
that trickles bytes forever would hold one thread per download, so downloads take a slot
first (``MLTRAINER_MAX_DOWNLOADS``; one more is refused at once instead of waiting on a
thread), and each has a deadline (``MLTRAINER_DOWNLOAD_TIMEOUT_S``) after which it stops with
a clear error: checked between chunks, and enforced on the connections it opened, which are
shut down at the deadline so that a read blocked on a silent server returns at once.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Self

from mltrainer.state.errors import PermissionDenied, RemoteServiceError
from mltrainer.state.settings import Settings
from mltrainer.tools.datasets.models import ProgressFn

_slots_lock = threading.Lock()
_running = 0  # downloads in this process (what they fetch is not said: other clients' business)


@contextlib.contextmanager
def download_slot(settings: Settings) -> Iterator[None]:
    """Hold one of the process's download slots; refuse at once when all are taken."""
    global _running
    with _slots_lock:
        if _running >= settings.max_downloads:
            raise PermissionDenied(
                f"{_running} downloads are already running; at most {settings.max_downloads} "
                "run at once (MLTRAINER_MAX_DOWNLOADS).",
                next_step="Wait for one of them to finish and call again; a dataset already "
                "downloaded is answered from the cache without a slot.",
            )
        _running += 1
    try:
        yield
    finally:
        with _slots_lock:
            _running -= 1


class Deadline:
    """The overall deadline of one download. Use as a context manager around the download."""

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds, self.what = seconds, what
        self.ends = time.monotonic() + seconds
        self.expired = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Self:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def remaining(self) -> float:
        return max(self.ends - time.monotonic(), 0.0)

    def clip(self, timeout: float | None) -> float:
        """A per-operation timeout that does not outlast the deadline."""
        remaining = max(self.remaining(), 0.001)
        return remaining if timeout is None else min(timeout, remaining)

    def watch(self, sock: socket.socket | None) -> None:
        """Shut ``sock`` down at the deadline (at once if it has passed)."""
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            late = self.expired.is_set()
        if late:
            self._shut(sock)

    def _expire(self) -> None:
        self.expired.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        # shutdown, not close: it wakes a recv blocked in another thread on every platform.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def passed(self) -> bool:
        return self.expired.is_set() or self.remaining() <= 0

    def check(self) -> None:
        if self.passed():
            raise self.error()

    def error(self) -> RemoteServiceError:
        return RemoteServiceError(
            f"The download of {self.what} did not finish within its deadline of "
            f"{self.seconds:g} s (MLTRAINER_DOWNLOAD_TIMEOUT_S); nothing of it was kept.",
            next_step="Try again later, take single files with the files argument, or have "
            "the person raise MLTRAINER_DOWNLOAD_TIMEOUT_S for very large datasets.",
        )

    def checking(self, progress: ProgressFn) -> ProgressFn:
        """``progress`` that first stops the download once the deadline has passed: every
        source reports progress per chunk, so none runs on past it by more than one chunk."""

        def report(done: float, total: float | None, message: str) -> None:
            self.check()
            progress(done, total, message)

        return report

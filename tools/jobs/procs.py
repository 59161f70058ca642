"""Process bookkeeping for job workers: start one, tell whether it still runs, stop it with
everything it started — the same on Linux, macOS and Windows (psutil).

A worker is named by its pid plus its creation time, so that a pid the OS has reused for
another process after a crash or a reboot is never taken for the worker. On POSIX a worker
leads its own session and process group, so a stop also reaches the processes that left its
tree (reparented grandchildren); on Windows it starts in a new process group and its tree is
stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

POSIX = os.name == "posix"
# Creation times are floats the OS reports the same way each time; a stored one must equal it.
SAME_START_S = 0.01
POLL_S = 0.05


def start_time(pid: int) -> float | None:
    """The process's creation time in seconds since the epoch; None if gone or a zombie."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:  # it has finished its work
            return None
        return proc.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):  # another user's process is not ours
        return None


def alive(pid: int | None, started: float | None) -> bool:
    """Whether the process ``pid`` that was created at ``started`` still runs."""
    if not pid:
        return False
    now = start_time(pid)
    return now is not None and (started is None or abs(now - started) < SAME_START_S)


def spawn(
    args: list[str], *, log_path: Path, env: dict[str, str], cwd: Path, piped: bool = False
) -> subprocess.Popen[bytes]:
    """Start a worker in its own session (POSIX) or process group (Windows).

    ``-P`` keeps the working directory off ``sys.path`` and ``cwd`` is a directory of ours, so
    nothing in the directory the server was started from can stand in for our modules.
    ``piped``: its standard input is a pipe from us (the spare worker reads its job there).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    flags = 0 if POSIX else subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-P", *args],
            cwd=cwd,
            stdin=subprocess.PIPE if piped else subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=POSIX,
            creationflags=flags,
            close_fds=True,
        )


def stop_tree(pid: int, started: float | None = None, *, grace_s: float = 5.0) -> None:
    """Ask the worker ``pid`` and everything it started to stop; kill what is left after
    ``grace_s``. A live process at ``pid`` created at another time is not the worker: it is
    left alone."""
    if start_time(pid) is not None and not alive(pid, started):
        return
    for soft in (True, False):
        members = _members(pid)
        if not members:
            return
        _signal(pid, members, soft=soft)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _members(pid):
            time.sleep(POLL_S)


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _members(pid: int) -> list[psutil.Process]:
    """The worker, its descendants and (POSIX) the rest of its process group, still running."""
    found: dict[int, psutil.Process] = {}
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            found[proc.pid] = proc
    if POSIX:
        for proc in psutil.process_iter():
            with contextlib.suppress(OSError):
                if proc.pid not in found and os.getpgid(proc.pid) == pid:
                    found[proc.pid] = proc
    return [proc for proc in found.values() if _running(proc)]


def _signal(pgid: int, members: list[psutil.Process], *, soft: bool) -> None:
    if POSIX:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM if soft else signal.SIGKILL)
    for proc in members:  # those that left the group, and every process on Windows
        with contextlib.suppress(psutil.Error):
            if soft:
                proc.terminate()
            else:
                proc.kill()

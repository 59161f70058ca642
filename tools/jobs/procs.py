"""Process bookkeeping for workers: start, identify (pid plus start time), stop a whole group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def stat_fields(pid: int | str) -> list[str] | None:
    """Fields 3 onwards of ``/proc/<pid>/stat`` (state, ppid, pgrp, ...), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and ')', so split after the last ')'.
    return stat.rsplit(")", 1)[1].split()


def start_time(pid: int) -> float | None:
    """The process's start time in clock ticks since boot, or None if it is gone.

    A pid can be reused after a crash or reboot; pid plus start time names one process.
    """
    fields = stat_fields(pid)
    if fields is None or fields[0] == "Z":  # a zombie has finished its work
        return None
    return float(fields[19])


def alive(pid: int | None, started: float | None) -> bool:
    if not pid:
        return False
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def spawn(
    args: list[str], *, log_path: Path, env: dict[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    """Start a worker in its own session, so that stopping it stops all it started.

    ``-P`` keeps the working directory off ``sys.path`` and ``cwd`` is a directory of ours, so
    nothing in the directory the server was started from can stand in for our modules.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-P", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )


def kill_group(pid: int, *, grace_s: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after ``grace_s``."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _group_exists(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies of the group still count for killpg; look for a live member.
    for entry in Path("/proc").iterdir():
        fields = stat_fields(entry.name) if entry.name.isdigit() else None
        if fields is not None and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False

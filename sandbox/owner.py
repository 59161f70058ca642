"""Which server owns a sandbox, and whether that server still runs.

Every sandbox manager has an ``Owner``: a random instance id plus the server's pid and process
start time (a pid alone can be reused after the server dies). Docker containers carry it as
labels and sandbox runs record it in the store, so that a server starting later can tell the
containers and runs of a server that died (removed and marked lost) from those of another
server running beside it (left alone). psutil makes the liveness check work on any OS.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

import psutil

# Process start times are floats read from the OS; two readings of the same process agree to
# well under this, and a reused pid starts at least this much later.
START_TIME_TOLERANCE_S = 0.05


@dataclass(frozen=True)
class Owner:
    instance: str
    pid: int
    started: float
    host: str

    @classmethod
    def current(cls) -> Owner:
        return cls(
            instance=uuid.uuid4().hex[:12],
            pid=os.getpid(),
            started=process_started(os.getpid()) or 0.0,
            host=socket.gethostname(),
        )


def process_started(pid: int) -> float | None:
    """The process's start time (seconds since the epoch), or None when it does not exist."""
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:  # it exists; its start time is hidden (macOS, other users)
        return -1.0


def process_alive(pid: int | None, started: float | None) -> bool:
    """True while the process that had ``pid`` at ``started`` is still running.

    When the OS hides the start time the process is taken as alive: leaving a sandbox of a
    live server alone is better than killing it.
    """
    if pid is None:
        return False
    now = process_started(pid)
    if now is None:
        return False
    if now < 0 or started is None or started < 0:
        return True
    return abs(now - started) <= START_TIME_TOLERANCE_S

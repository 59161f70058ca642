"""Sandbox processes are started from one long-lived thread.

bubblewrap's ``--die-with-parent`` (``PR_SET_PDEATHSIG``) kills the sandbox when the *thread*
that started it exits, not the process. run_code calls arrive on anyio worker threads, which
end after 10 s idle, and a code job runs in a thread of its own: a session started there
would die with that thread and its variables be lost. One thread that lives as long as the
process starts them all (``subprocess.Popen`` with vfork is quick, so they queue briefly).
"""

from __future__ import annotations

import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def popen(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **kwargs)``, run on the spawning thread."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawn")
        executor = _executor

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, **kwargs)

    return executor.submit(start).result()

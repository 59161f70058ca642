"""Peak memory of a process tree, sampled from /proc (Linux) while it runs.

The tree's RSS is summed, so pages that forked workers share are counted once per worker: an
upper bound, the same rule for every contestant.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces; fields after its closing ')' are fixed.
        fields = stat[stat.rfind(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def _rss_kb(pid: int) -> int:
    try:
        return int((Path("/proc") / str(pid) / "statm").read_text().split()[1]) * PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss_mb(root: int) -> tuple[float, int]:
    """Current RSS of ``root`` and all its descendants in MB, and how many processes that is."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    total, count, stack = 0, 0, [root]
    while stack:
        pid = stack.pop()
        total += _rss_kb(pid)
        count += 1
        stack.extend(children.get(pid, []))
    return total / 1024, count


class PeakSampler:
    """Samples a process tree's RSS in a thread until stopped: the highest total seen
    (``peak_mb``) and the most processes the tree had at once (``max_processes``)."""

    def __init__(self, root: int, interval_s: float = 0.1) -> None:
        self.root = root
        self.interval_s = interval_s
        self.peak_mb = 0.0
        self.max_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakSampler:
        if Path("/proc/self/stat").exists():
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss_mb, processes = tree_rss_mb(self.root)
            self.peak_mb = max(self.peak_mb, rss_mb)
            self.max_processes = max(self.max_processes, processes)
            self._stop.wait(self.interval_s)

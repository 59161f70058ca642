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


def _name(pid: int) -> str:
    """A short name for a process: the module it runs (``-m x.y``) or its program."""
    try:
        argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    if "-m" in words and words.index("-m") + 1 < len(words):
        return words[words.index("-m") + 1].rsplit(".", 1)[-1]
    return Path(words[0]).name if words else "?"


def tree_rss(root: int) -> dict[int, float]:
    """Current RSS in MB of ``root`` and each of its descendants, by process id."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    sizes, stack = {}, [root]
    while stack:
        pid = stack.pop()
        sizes[pid] = _rss_kb(pid) / 1024
        stack.extend(children.get(pid, []))
    return sizes


def tree_rss_mb(root: int) -> tuple[float, int]:
    """Current RSS of ``root`` and all its descendants in MB, and how many processes that is."""
    sizes = tree_rss(root)
    return sum(sizes.values()), len(sizes)


class PeakSampler:
    """Samples a process tree's RSS in a thread until stopped: the highest total seen
    (``peak_mb``), each process's share at that moment (``at_peak``: name → MB), each
    process's own highest RSS (``process_peaks``) and the most processes the tree had at once
    (``max_processes``)."""

    def __init__(self, root: int, interval_s: float = 0.1) -> None:
        self.root = root
        self.interval_s = interval_s
        self.peak_mb = 0.0
        self.max_processes = 0
        self.descendants_peak_mb = 0.0  # the tree without its root (a client that only waits)
        self.at_peak: dict[str, float] = {}
        self.process_peaks: dict[str, float] = {}
        self._names: dict[int, str] = {}  # the latest name seen for each process
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
        at_peak: dict[int, float] = {}
        peaks: dict[int, float] = {}
        while not self._stop.is_set():
            sizes = tree_rss(self.root)
            for pid, mb in sizes.items():
                # Re-read: a forked child shows its parent's command line until it execs.
                name = _name(pid)
                if name != "?" or pid not in self._names:  # "?": it has just exited
                    self._names[pid] = name
                peaks[pid] = max(peaks.get(pid, 0.0), mb)
            below = sum(mb for pid, mb in sizes.items() if pid != self.root)
            self.descendants_peak_mb = max(self.descendants_peak_mb, below)
            if sum(sizes.values()) > self.peak_mb:
                self.peak_mb, at_peak = sum(sizes.values()), sizes
            self.max_processes = max(self.max_processes, len(sizes))
            self._stop.wait(self.interval_s)
        label = {pid: f"{name}[{pid}]" for pid, name in self._names.items()}
        self.at_peak = {label[pid]: round(mb, 1) for pid, mb in at_peak.items()}
        self.process_peaks = {label[pid]: round(mb, 1) for pid, mb in peaks.items()}

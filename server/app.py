"""Builds the MCP server: a typed lifespan context and one module per domain of tools."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mcp.server import MCPServer
from mcp.server.mcpserver import Context

from mltrainer.server.masking import mask_logs, mask_results
from mltrainer.server.secret_entry import SecretEntryServer
from mltrainer.state.masking import Masker
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.jobs.manager import JobManager

if TYPE_CHECKING:
    from mltrainer.sandbox.manager import SandboxManager

log = logging.getLogger("mltrainer")

INSTRUCTIONS = """\
mltrainer trains machine-learning models on tabular data. Typical flow: search_datasets →
download_dataset → profile_dataset → train_model (waits up to wait_s, then returns a job_id
to poll with job_status) → predict. Long work runs as durable jobs: list_jobs, job_status,
cancel_job. run_code runs Python in an isolated sandbox. Credentials are never passed as
values: use references like secret://HF_TOKEN (see list_secrets).
"""
SUPERVISE_EVERY_S = 2.0


@dataclass
class AppContext:
    settings: Settings
    store: Store
    vault: SecretVault
    masker: Masker
    jobs: JobManager
    secret_entry: SecretEntryServer
    sandbox: SandboxManager | None = None  # created on first use: probing Docker takes time
    _stop: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        self._stop.set()
        if self.sandbox is not None:
            self.sandbox.close()
        self.jobs.shutdown()
        self.secret_entry.close()
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
        secret_entry=SecretEntryServer(vault, masker),
    )
    for note in jobs.recover():
        log.warning("recovered job %s", note)
    from mltrainer.sandbox.manager import recover_at_start

    for note in recover_at_start(store):  # runs, code jobs and containers of a dead server
        log.warning("sandbox recovery: %s", note)
    threading.Thread(target=_supervise, args=(context,), name="job-supervisor", daemon=True).start()
    return context


def _supervise(context: AppContext) -> None:
    """Notice workers that die while the server runs, and resume or fail their jobs."""
    while not context._stop.wait(SUPERVISE_EVERY_S):
        try:
            context.jobs.recover()
        except Exception:  # keep supervising; the next round retries
            log.exception("job supervision failed")


def create_server(settings: Settings | None = None) -> MCPServer[AppContext]:
    @asynccontextmanager
    async def lifespan(_: MCPServer[AppContext]) -> AsyncIterator[AppContext]:
        context = build_context(settings or Settings())
        mask_logs(context.masker)
        try:
            yield context
        finally:
            context.close()

    mcp: MCPServer[AppContext] = MCPServer(
        "mltrainer",
        instructions=INSTRUCTIONS,
        version="0.1.0",
        lifespan=lifespan,
        middleware=[mask_results],
    )
    from mltrainer.server import analysis, data, deploy, jobs, profiling, sandbox, secrets

    for domain in (jobs, data, profiling, sandbox, secrets, deploy, analysis):
        domain.register(mcp)
    return mcp

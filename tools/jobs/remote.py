"""Jobs that run elsewhere: the worker orchestrates, the runtime does the work.

A train job with ``runtime != "local"`` and every script job (submit_training) run in the job
worker like local ones, as stages: ``preflight`` (recorded by the server: the spec and the
guard's report) → ``upload`` → ``submit`` → ``poll`` (status and log, the log masked and
turned into job events as it arrives) → ``fetch`` → ``adopt`` (the model registered as a
local model is, or the script's outputs recorded as artifacts).

**Never twice.** ``remote_state='submitting'`` is recorded on the job row before the provider
is asked; a worker that finds it (it died while submitting) asks ``runtime.find`` before it
submits again, and a resumed job whose ``submit`` stage finished re-attaches to the recorded
handle. Each stage retries ``TransientRemoteError`` with backoff, on its own budget; a submit
retried after an error asks ``find`` first, since the provider may have taken it.

**Once more, on purpose.** A train run that failed for want of memory or time is planned
again once (reaction.py), within the cost cap, and submitted as ``<job>-2``; the decision is
recorded with the error that caused it.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel

from mltrainer.state.errors import MLTrainerError, RemoteServiceError
from mltrainer.state.models import JobRecord, utcnow
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.jobs.after_train import after_training
from mltrainer.tools.jobs.context import JobCancelled, JobContext
from mltrainer.tools.runtimes.base import (
    TERMINAL_REMOTE,
    Handle,
    RemoteSpec,
    RemoteState,
    Runtime,
    TransientRemoteError,
)
from mltrainer.tools.runtimes.engine_entry import EVENT_PREFIX
from mltrainer.tools.runtimes.files import FETCHED
from mltrainer.tools.runtimes.models import GuardReport, ScriptOutcome, ScriptRequest
from mltrainer.tools.runtimes.reaction import Reaction, react
from mltrainer.tools.training.outcome import TrainOutcome
from mltrainer.tools.training.request import TrainRequest

T = TypeVar("T")
PREFLIGHT = "preflight"
REACTION = "reaction"
LOG_TAIL_LINES = 40
MAX_LINES_PER_READ = 500
MAX_LINE_CHARS = 2000


class Prepared(BaseModel):
    """The ``preflight`` stage's result: what the server checked and the worker runs."""

    spec: RemoteSpec
    report: GuardReport


class RemoteRunFailed(MLTrainerError):
    """The training itself failed on the remote machine."""


def record_prepared(store: Store, job_id: str, prepared: Prepared) -> None:
    """Called by the server once the guard passed, before the job's worker starts."""
    store.start_stage(job_id, PREFLIGHT, 0, 0)
    store.finish_stage(job_id, PREFLIGHT, "succeeded", result=prepared.model_dump(mode="json"))


# -- the worker's entry points ---------------------------------------------------------------
def run_remote_train_job(ctx: JobContext) -> dict[str, Any]:
    from mltrainer.tools.jobs.deep_adopt import adopt_deep_model
    from mltrainer.tools.runtimes.adopt import adopt_model
    from mltrainer.tools.runtimes.jobspec import run_dir

    prepared = Prepared.model_validate(ctx.stage(PREFLIGHT, lambda: {}))
    spec, submission = prepared.spec, 1
    deep = spec.kind == "deep"  # a rendered template (tools/jobs/deep.py), not the engine
    earlier = ctx.restore(REACTION)
    reaction = Reaction.model_validate(earlier["reaction"]) if earlier else None
    if earlier:
        spec, submission = RemoteSpec.model_validate(earlier["spec"]), 2
    with _runtime(ctx) as runtime:
        handle, state = run_submission(ctx, runtime, spec, submission)
        if state.status == "failed" and reaction is None and not deep:
            planned = _react(ctx, runtime, spec, state, prepared.report)
            if planned is not None:
                reaction, spec = planned
                handle, state = run_submission(ctx, runtime, spec, 2)
                submission = 2
        _raise_unless_succeeded(ctx, state, handle)
        fetched = fetch(ctx, runtime, handle, submission)
    folder = run_dir(ctx.settings, ctx.job.id, submission)

    def adopt() -> dict[str, Any]:
        take = adopt_deep_model if deep else adopt_model
        outcome = take(fetched, folder, ctx.settings, ctx.store, ctx.job.id)
        if reaction is not None:
            outcome.decisions.insert(0, reaction.decision)
        return outcome.model_dump(mode="json")

    outcome = TrainOutcome.model_validate(ctx.stage("adopt", adopt))
    ctx.store.update_job(ctx.job.id, result=outcome.model_dump(mode="json"))
    ctx.event(f"Model {outcome.model_id} came back from {handle.runtime}.", progress=1.0)
    if deep:  # the engine's follow-ups (iterate, tracking, deploy_to) are tabular
        return outcome.model_dump(mode="json")
    request = TrainRequest.model_validate(ctx.job.request)
    return after_training(ctx, request, outcome).model_dump(mode="json")


def run_script_job(ctx: JobContext) -> dict[str, Any]:
    from mltrainer.tools.runtimes.adopt import adopt_outputs

    request = ScriptRequest.model_validate(ctx.job.request)
    prepared = Prepared.model_validate(ctx.stage(PREFLIGHT, lambda: {}))
    with _runtime(ctx) as runtime:
        handle, state = run_submission(ctx, runtime, prepared.spec, 1)
        _raise_unless_succeeded(ctx, state, handle)
        fetched = fetch(ctx, runtime, handle, 1)
    wanted = prepared.spec.outputs

    def adopt() -> dict[str, Any]:
        return adopt_outputs(fetched, wanted, ctx.store, ctx.store.masker, ctx.job.id)

    outputs = {str(k): str(v) for k, v in ctx.stage("adopt", adopt).items()}
    missing = [name for name in wanted if not any(k.startswith(name) for k in outputs)]
    outcome = ScriptOutcome(
        runtime=request.runtime,
        status=state.status,
        message=f"missing outputs: {', '.join(missing)}" if missing else state.message,
        outputs=outputs,
        log_tail=_log_tail(ctx),
        cost_usd=state.cost_usd,
    )
    ctx.event(f"{len(outputs)} output file(s) came back from {handle.runtime}.", progress=1.0)
    return outcome.model_dump(mode="json")


@contextmanager
def _runtime(ctx: JobContext) -> Iterator[Runtime]:
    """The job's runtime; for a script on this machine, with a sandbox closed at the end."""
    from mltrainer.tools.runtimes.registry import runtime_for

    name = ctx.job.runtime
    if name != "local":
        yield runtime_for(name, ctx.settings, ctx.vault)
        return
    from mltrainer.sandbox.manager import create_manager

    sandbox = create_manager(ctx.settings, ctx.store.masker, ctx.store)
    try:
        yield runtime_for(name, ctx.settings, ctx.vault, sandbox=sandbox)
    finally:
        sandbox.close()


# -- one submission: upload -> submit -> poll ----------------------------------------------
def run_submission(
    ctx: JobContext, runtime: Runtime, spec: RemoteSpec, submission: int
) -> tuple[Handle, RemoteState]:
    suffix = "" if submission == 1 else f"#{submission}"

    def upload() -> dict[str, Any]:
        retried(ctx, "upload", lambda: runtime.upload(spec))
        ctx.event(f"Uploaded the run folder and its data to {runtime.name}.", progress=0.03)
        return {}

    ctx.stage("upload" + suffix, upload)
    handle = Handle.model_validate(
        ctx.stage("submit" + suffix, lambda: submit(ctx, runtime, spec).model_dump(mode="json"))
    )
    state = RemoteState.model_validate(
        ctx.stage(
            "poll" + suffix,
            lambda: poll(ctx, runtime, handle, suffix).model_dump(mode="json"),
        )
    )
    return handle, state


def submit(ctx: JobContext, runtime: Runtime, spec: RemoteSpec) -> Handle:
    """Submit once per job: a recorded handle is re-attached to; a submission an earlier
    worker may have made (``submitting`` recorded, no handle) is looked for first."""
    store, job_id = ctx.store, ctx.job.id
    job = store.get_job(job_id)
    if job.remote_state == "submitted" and job.remote_id:
        ctx.event(f"Re-attaching to {runtime.name} run {job.remote_id} (submitted before).")
        return Handle(runtime=runtime.name, remote_id=job.remote_id, url=job.remote_url)
    asked = job.remote_state == "submitting"

    def once() -> Handle:
        nonlocal asked
        found = runtime.find(spec.job_id) if asked else None
        if found is not None:
            ctx.event(
                f"{runtime.name} already has run {found.remote_id} for this job (submitted "
                "before a restart): re-attaching, not submitting again.",
                level="warning",
            )
            return found
        store.update_job(job_id, remote_state="submitting")
        asked = True  # from here on, the provider may have it
        return runtime.submit(spec)

    handle = retried(ctx, "submit", once)
    store.update_job(
        job_id, remote_id=handle.remote_id, remote_url=handle.url, remote_state="submitted"
    )
    where = f" ({handle.url})" if handle.url else ""
    ctx.event(f"Submitted to {runtime.name} as {handle.remote_id}{where}.", progress=0.05)
    return handle


def poll(ctx: JobContext, runtime: Runtime, handle: Handle, suffix: str) -> RemoteState:
    """Watch the run until it ends, relaying its log; its last state."""
    key = "log" + suffix
    cursor = (ctx.restore(key) or {}).get("cursor")
    while True:
        state = retried(ctx, "poll", lambda: runtime.status(handle))
        chunk = retried(ctx, "poll", functools.partial(runtime.logs, handle, cursor))
        if chunk.text:
            relay(ctx, chunk.text)
        if chunk.cursor != cursor:
            cursor = chunk.cursor
            ctx.checkpoint(key, {"cursor": cursor})
        if state.cost_usd is not None:
            ctx.store.update_job(ctx.job.id, cost_usd=state.cost_usd)
        if state.status in TERMINAL_REMOTE:
            ctx.event(f"The run on {runtime.name} ended: {state.status}. {state.message}".strip())
            return state
        time.sleep(ctx.settings.remote_poll_s)


def relay(ctx: JobContext, text: str) -> None:
    """The run's new log lines as job events, masked on arrival; the engine's progress lines
    (``@mltrainer {...}``) move the job's progress."""
    lines = ctx.store.masker.mask(text).splitlines()
    if len(lines) > MAX_LINES_PER_READ:
        skipped = len(lines) - MAX_LINES_PER_READ
        ctx.event(f"({skipped} log lines left out; the last {MAX_LINES_PER_READ} follow)")
        lines = lines[-MAX_LINES_PER_READ:]
    for line in lines:
        if line.startswith(EVENT_PREFIX):
            try:
                event = json.loads(line[len(EVENT_PREFIX) :])
                progress = event.get("progress")
                scaled = 0.05 + 0.9 * float(progress) if progress is not None else None
                ctx.event(str(event["message"]), progress=scaled, level=str(event.get("level")))
                continue
            except (ValueError, KeyError, TypeError):
                pass  # not ours after all: kept as a plain line
        if line.strip():
            ctx.event(line[:MAX_LINE_CHARS], level="info")


def fetch(ctx: JobContext, runtime: Runtime, handle: Handle, submission: int) -> Any:
    folder = ctx.workdir / FETCHED / str(submission)

    def download() -> dict[str, Any]:
        files = retried(ctx, "fetch", lambda: runtime.fetch(handle, folder))
        ctx.event(f"Fetched {len(files)} file(s) from {runtime.name}.", progress=0.97)
        return {"folder": str(folder), "files": len(files)}

    ctx.stage("fetch" + ("" if submission == 1 else f"#{submission}"), download)
    return folder


# -- retries, failures, reactions --------------------------------------------------------------
def retried(ctx: JobContext, stage: str, fn: Callable[[], T]) -> T:
    """``fn()``, retried with exponential backoff on ``TransientRemoteError``."""
    import stamina

    settings = ctx.settings
    tries = 0
    try:
        for attempt in stamina.retry_context(
            on=TransientRemoteError,
            attempts=settings.remote_retries,
            timeout=None,
            wait_initial=settings.remote_retry_wait_s,
            wait_max=60 * settings.remote_retry_wait_s,
            wait_jitter=settings.remote_retry_wait_s / 2,
        ):
            with attempt:
                tries += 1
                try:
                    return fn()
                except TransientRemoteError as exc:
                    ctx.event(
                        f"{stage}: {exc} (try {tries} of {settings.remote_retries})",
                        level="warning",
                    )
                    raise
    except TransientRemoteError as exc:
        raise RemoteServiceError(
            f"The {stage} stage failed {tries} times: {exc}",
            next_step="The provider may be down: start the job again later (a run it already "
            "took is found and re-attached to, never submitted twice).",
        ) from exc
    raise AssertionError("unreachable: stamina either returns or raises")


def _log_tail(ctx: JobContext) -> str:
    """The end of the run's log, as it was relayed into the job's events."""
    events = ctx.store.events(ctx.job.id, limit=100_000)
    lines = [
        e.message
        for e in events
        if e.stage
        and e.stage.startswith("poll")
        and e.level not in ("warning", "debug")
        and not e.message.startswith(("Stage '", "The run on "))
    ]
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _raise_unless_succeeded(ctx: JobContext, state: RemoteState, handle: Handle) -> None:
    if state.status == "succeeded":
        return
    if state.status == "cancelled":
        raise JobCancelled
    where = f" ({handle.url})" if handle.url else ""
    raise RemoteRunFailed(
        f"The run on {handle.runtime} {handle.remote_id}{where} failed: {state.message}\n"
        f"The end of its log:\n{_log_tail(ctx)}",
        next_step="Fix what the log shows (dry_run=True proves a fix in seconds) and start a "
        "new job.",
    )


def _react(
    ctx: JobContext, runtime: Runtime, spec: RemoteSpec, state: RemoteState, report: GuardReport
) -> tuple[Reaction, RemoteSpec] | None:
    """The planner's one reaction to a failed engine run, if it has one and the cap allows a
    second run; recorded (decision, error, new spec) before the new run is submitted."""
    from mltrainer.tools.runtimes.jobspec import engine_spec

    request = TrainRequest.model_validate(ctx.job.request)
    reaction = react(request, f"{state.message}\n{_log_tail(ctx)}", spec.resources.memory_gb)
    if reaction is None:
        return None
    second = engine_spec(ctx.settings, ctx.job.id, reaction.request, submission=2)
    second = second.model_copy(update={"resources": spec.resources})  # the same machine
    spent = _spent(ctx.store.get_job(ctx.job.id), report)
    again = runtime.estimate_cost(second).usd
    if spent + again > report.cap_usd:
        ctx.event(
            f"The planner would {reaction.decision.decision}, but the first run (up to "
            f"${spent:.2f}) and a second (up to ${again:.2f}) would pass the cap of "
            f"${report.cap_usd:.2f}: not run again.",
            level="warning",
        )
        return None
    ctx.checkpoint(
        REACTION,
        {"reaction": reaction.model_dump(mode="json"), "spec": second.model_dump(mode="json")},
    )
    ctx.store.update_job(ctx.job.id, remote_id=None, remote_url=None, remote_state=None)
    ctx.event(
        f"Planner: the run failed ({reaction.cause}: {reaction.error}); "
        f"{reaction.decision.decision}.",
        level="warning",
    )
    return reaction, second


def _spent(job: JobRecord, report: GuardReport) -> float:
    """What the failed run cost: as reported, else its hourly price since it started."""
    if job.cost_usd is not None:
        return job.cost_usd
    if job.started_at is None:
        return report.estimate.usd
    hours = (utcnow() - job.started_at).total_seconds() / 3600
    return min(report.estimate.usd, report.estimate.usd_per_hour * hours)


# -- cancelling (called by the server's job manager) -----------------------------------------
def cancel_remote(job: JobRecord, settings: Settings, store: Store) -> str:
    """Stop the job's remote run where the provider allows it; what happened, in a sentence."""
    from mltrainer.tools.runtimes.jobspec import submission_name
    from mltrainer.tools.runtimes.registry import runtime_for

    if job.runtime == "local" or job.remote_state is None:
        return ""
    try:
        runtime = runtime_for(job.runtime, settings, SecretVault.for_settings(settings))
        handle = None
        if job.remote_id:
            handle = Handle(runtime=runtime.name, remote_id=job.remote_id, url=job.remote_url)
        else:
            resubmitted = any(s.name == f"checkpoint:{REACTION}" for s in store.stages(job.id))
            handle = runtime.find(submission_name(job.id, 2 if resubmitted else 1))
        if handle is None:
            return f"Nothing had reached {job.runtime} yet."
        return runtime.cancel(handle).message
    except MLTrainerError as exc:
        return (
            f"{job.runtime} could not be asked to stop the run ({exc}): it may continue until "
            "its timeout."
        )

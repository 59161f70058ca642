"""Remote training: submit_training, and the path train_model takes for runtime='modal' or
'kaggle' (or dry_run=True).

Both prepare a run folder under the job's id, run the pre-flight guard (spec, data size, cost
cap, syntax, dry run in the sandbox) and only then record the job and start its worker, which
uploads, submits, polls and fetches. Every refusal is a tool error before anything is sent.
``dry_run=True`` records a job that ran only the guard and returns it with its report.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from mcp.server import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from mltrainer.server.context import AppContext, AppCtx, app_context
from mltrainer.state.errors import InvalidInput
from mltrainer.state.models import JobRecord, utcnow
from mltrainer.state.store import new_id
from mltrainer.tools.deep.models import DeepTask
from mltrainer.tools.jobs.views import JobView
from mltrainer.tools.runtimes.base import RemoteSpec, Runtime
from mltrainer.tools.runtimes.models import ScriptRequest
from mltrainer.tools.training.request import TrainRequest

STARTUP_WAIT_S = 60.0
RuntimeArg = Annotated[
    Literal["local", "modal", "kaggle"],
    Field(
        description="Where it runs: 'local' (this machine), 'modal' (Modal, needs "
        "secret://MODAL) or 'kaggle' (a Kaggle kernel, needs secret://KAGGLE)."
    ),
]
GpuArg = Annotated[
    str | None,
    Field(
        max_length=32,
        description="A GPU type, e.g. 'T4', 'L4', 'A10G', 'A100-80GB', 'H100' (remote only); "
        "None: CPU only.",
    ),
]
CostArg = Annotated[
    float | None,
    Field(
        ge=0,
        le=100_000,
        description="Refuse the run if it could cost more (its resources until its timeout, "
        "at the catalogue's dated prices). Default: the server's cap (MLTRAINER_MAX_COST_USD).",
    ),
]
DryRunArg = Annotated[
    bool,
    Field(
        description="Only run the pre-flight guard (spec, cost estimate against the cap, dry "
        "run of the script on a sample in the local sandbox) and return its report; nothing "
        "is sent or paid for."
    ),
]


def check_local(request: TrainRequest) -> None:
    """train_model on this machine: what only a remote runtime offers is refused."""
    if request.gpu is not None:
        raise InvalidInput(
            "runtime='local' trains on this machine's CPU: gpu= needs a remote runtime.",
            next_step="Pass runtime='modal' (or 'kaggle') with the gpu, or leave gpu out.",
        )
    cores = os.cpu_count() or 1
    if request.parallel > cores:
        raise InvalidInput(
            f"parallel={request.parallel}: this machine has {cores} cores.",
            next_step=f"Pass parallel of at most {cores}, or a remote runtime.",
        )


def start_remote_training(app: AppContext, request: TrainRequest, *, dry_run: bool) -> str:
    """Check and start a train job that runs elsewhere (or only its guard); its job id."""
    if request.iterate and request.runtime != "local":
        raise InvalidInput(
            f"iterate={request.iterate} runs its rounds on this machine; runtime="
            f"'{request.runtime}' trains once.",
            next_step="Leave iterate out for a remote run (analyze_model its model, then train "
            "again with the changes), or train locally.",
        )
    from mltrainer.tools.runtimes.engine_entry import MODEL_DIR, OUTCOME_FILE
    from mltrainer.tools.runtimes.jobspec import engine_spec
    from mltrainer.tools.training.model import MODEL_FILE
    from mltrainer.tools.training.prepare import prepare_train_request

    runtime = _runtime(app, request.runtime)
    prepared = prepare_train_request(request, app.settings, app.store, app.vault)
    job_id = new_id("job")
    spec = engine_spec(app.settings, job_id, prepared)
    expected = [OUTCOME_FILE, f"{MODEL_DIR}/{MODEL_FILE}"]
    return _guarded(app, runtime, prepared, job_id, spec, dry_run, expected, request.target)


def start_deep_training(
    app: AppContext, request: TrainRequest, task: DeepTask, *, dry_run: bool
) -> str:
    """Check and start a deep-learning train job (tools/jobs/deep.py): planned, its data
    prepared and its template rendered here, then the same guard (its dry run proves the
    script on a tiny random model) and remote job as the engine's."""
    from mltrainer.tools.jobs.deep import EXPECTED, check_deep_request, deep_spec, planned

    check_deep_request(request)
    runtime = _runtime(app, request.runtime)
    job_id = new_id("job")
    spec, plan = deep_spec(app.settings, app.store, app.vault, job_id, request, task)
    request = request.model_copy(update={"task": task, "engine": "deep"})
    result = planned(plan).model_dump(mode="json")
    return _guarded(app, runtime, request, job_id, spec, dry_run, EXPECTED, None, result)


def start_script(app: AppContext, request: ScriptRequest, *, dry_run: bool) -> str:
    """Check and start a script job (or only its guard); its job id."""
    from mltrainer.tools.runtimes.jobspec import resolve_input, script_spec

    runtime = _runtime(app, request.runtime)
    data = None
    if request.dataset is not None:
        data = resolve_input(request.dataset, app.settings, app.store, app.vault)
    job_id = new_id("job")
    spec = script_spec(app.settings, job_id, request, data)
    return _guarded(app, runtime, request, job_id, spec, dry_run, spec.outputs, None)


def _runtime(app: AppContext, name: str) -> Runtime:
    """The runtime, its credentials checked first, once the server's start-up round (which
    makes every file of the state directory private) is over: a run folder prepared for the
    sandbox during it would be tightened under it."""
    from mltrainer.tools.runtimes.registry import runtime_for

    runtime = runtime_for(name, app.settings, app.vault)
    app.recovered.wait(timeout=STARTUP_WAIT_S)
    return runtime


def _guarded(
    app: AppContext,
    runtime: Runtime,
    request: TrainRequest | ScriptRequest,
    job_id: str,
    spec: RemoteSpec,
    dry_run: bool,
    expected: list[str],
    spread_column: str | None,
    result: dict[str, object] | None = None,
) -> str:
    """Run the pre-flight guard; if it passed, record the job (a dry run: as done) and start
    its worker, which finds the checked spec recorded before it can start."""
    from mltrainer.server.sandbox import manager_of
    from mltrainer.tools.jobs.remote import Prepared, record_prepared
    from mltrainer.tools.runtimes.guard import preflight

    report = preflight(
        spec,
        runtime,
        manager_of(app),
        app.settings,
        cap=request.max_cost_usd,
        mode="dry_run" if dry_run else "submission",
        expected=expected,
        spread_column=spread_column,
    )
    report.raise_if_refused()
    fields = {
        "runtime": report.runtime,
        "resources": spec.resources.model_dump(mode="json"),
        "estimated_cost_usd": report.estimate.usd,
        "preflight": report.model_dump(mode="json"),
    }
    if result is not None:  # the plan, shown before (and while) the run
        fields["result"] = result
    if dry_run:
        now = utcnow()
        kind = "train" if isinstance(request, TrainRequest) else "script"
        job = app.store.create_job(
            kind,
            request.model_dump(mode="json"),
            job_id=job_id,
            status="succeeded",
            progress=1.0,
            message="Dry run: the pre-flight guard passed; nothing was sent.",
            started_at=now,
            finished_at=now,
            **fields,
        )
        return job.id

    def prepare(job: JobRecord) -> None:
        record_prepared(app.store, job.id, Prepared(spec=spec, report=report))

    return app.jobs.submit(request, job_id=job_id, prepare=prepare, **fields).id


def register(mcp: MCPServer[AppContext]) -> None:
    @mcp.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, open_world_hint=True
        )
    )
    async def submit_training(
        script: Annotated[
            str,
            Field(
                min_length=1,
                max_length=1_000_000,
                description="The training script (Python). It reads its data from the folder "
                "in the environment variable MLTRAINER_INPUT_DIR (also --data) and writes what "
                "should come back into MLTRAINER_OUTPUT_DIR (also --output). With "
                "MLTRAINER_DRY_RUN=1 it should do a seconds-long version of its work.",
            ),
        ],
        ctx: AppCtx,
        runtime: RuntimeArg = "local",
        dataset: Annotated[
            str | None,
            Field(
                max_length=4096,
                description="Its data: a local file or folder (under the allowed roots), a "
                "dataset_id or a reference such as 'kaggle:owner/name'. A file keeps its name "
                "in MLTRAINER_INPUT_DIR; a folder its layout.",
            ),
        ] = None,
        requirements: Annotated[
            list[Annotated[str, Field(max_length=200)]],
            Field(max_length=50, description="Packages to install, e.g. 'lightgbm==4.5.0'."),
        ] = [],  # noqa: B006  (the SDK copies defaults; this is the tool's schema)
        gpu: GpuArg = None,
        cpu: Annotated[
            float | None,
            Field(gt=0, le=512, description="Physical cores to reserve; None: the default (4)."),
        ] = None,
        memory_gb: Annotated[
            float | None,
            Field(gt=0, le=4096, description="Memory to reserve, GB; None: the default (16)."),
        ] = None,
        timeout_s: Annotated[
            int,
            Field(ge=60, le=7 * 86_400, description="The run is stopped (and paid) up to this."),
        ] = 3600,
        max_cost_usd: CostArg = None,
        outputs: Annotated[
            list[Annotated[str, Field(max_length=512)]],
            Field(
                max_length=50,
                description="Paths in MLTRAINER_OUTPUT_DIR to bring back (and to require in "
                "the dry run); [] brings back everything it wrote.",
            ),
        ] = [],  # noqa: B006
        secrets: Annotated[
            list[Annotated[str, Field(max_length=80)]],
            Field(
                max_length=20,
                description="secret://NAME references made available to the run as "
                "environment variables, the provider's way (a Modal secret). Each must be "
                "bound to the provider's host; never put a value here or in the script.",
            ),
        ] = [],  # noqa: B006
        dry_run: DryRunArg = False,
    ) -> JobView:
        """Run a training script you wrote on a runtime, as a durable job: 'local' (the
        sandbox), 'modal' (a GPU on Modal) or 'kaggle'. Before anything is sent, the pre-flight
        guard checks the resources against the provider, the cost against the cap, and runs
        the script on a sample of the data in the local sandbox (it sees MLTRAINER_DRY_RUN=1)
        — a syntax error, a missing import, a wrong column or an output never written is
        refused then, in seconds. Returns the job at once: poll job_status(job_id); once it
        has succeeded, result.outputs lists the files that came back. dry_run=True returns
        the guard's report (preflight) only."""
        app = app_context(ctx)
        request = ScriptRequest(
            script=script,
            runtime=runtime,
            dataset=dataset,
            requirements=list(requirements),
            gpu=gpu,
            cpu=cpu,
            memory_gb=memory_gb,
            timeout_s=timeout_s,
            max_cost_usd=max_cost_usd,
            outputs=list(outputs),
            secrets=list(secrets),
        )
        job_id = await app.run_blocking(lambda: start_script(app, request, dry_run=dry_run))
        return JobView.of(app.store.get_job(job_id), app.store.stages(job_id))

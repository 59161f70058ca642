"""train_model for the deep-learning tasks: from a request to the run folder a runtime ships.

The same road as the engine's remote runs (server/runtimes.py → the pre-flight guard →
tools/jobs/remote.py), with tools/deep doing the planning: the dataset's layout is recognised,
the planner picks the backbone and its settings (refusing what cannot work: a backbone of the
wrong architecture class, a GPU too small, no GPU on ``runtime='local'``), the data becomes the
template's input folder (labels missing in a split and images that do not decode are refused
there), and the family's template is rendered with its ``config.json``. The guard then dry-runs
that script in the sandbox (tiny random model, no download) before anything is submitted.

``mltrainer_run.json`` beside the script records what the job expects back (the model id, the
task and its label set); adopt_deep.py checks the returned model folder against it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from pydantic import BaseModel, Field

from mltrainer.state.errors import DatasetError, InvalidInput, NotFound
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store, new_id
from mltrainer.tools.deep.frames import may_have_layout
from mltrainer.tools.deep.images import is_image
from mltrainer.tools.deep.layouts import detect_frame_layout, detect_layout
from mltrainer.tools.deep.memory import local_gpu_memory_gb
from mltrainer.tools.deep.models import DeepLayout, DeepPlan, DeepRequest, DeepTask
from mltrainer.tools.deep.planner import plan_deep
from mltrainer.tools.deep.prepare import prepare_input
from mltrainer.tools.deep.render import SCRIPT, render
from mltrainer.tools.runtimes.base import RemoteSpec, Resources
from mltrainer.tools.runtimes.catalogue import catalogue
from mltrainer.tools.runtimes.files import INPUT, readable
from mltrainer.tools.runtimes.jobspec import job_folder, resolve_input, run_dir
from mltrainer.tools.training.outcome import TrainOutcome
from mltrainer.tools.training.plan import Decision
from mltrainer.tools.training.request import DEEP_TASKS, TrainRequest

RUN_FILE = "mltrainer_run.json"
SNIFFED_TABLES = (".csv", ".tsv", ".parquet", ".pq", ".xlsx", ".xls")
SNIFF_ROWS = 500
# Beyond time_budget_s: the image build, the checkpoint's download, the test split and saving.
OVERHEAD_S = 600
# What the dry run (and the remote run) must write into the output folder: the model folder.
EXPECTED = ["model.safetensors", "config.json", "metrics.json", "README.md", "reload_check.json"]


class DeepRun(BaseModel):
    """What a deep job sent, so that what comes back can be checked against it."""

    job_id: str
    model_id: str
    task: DeepTask
    target: str | None
    backbone: str
    metric: str
    greater_is_better: bool
    labels: list[str] = Field(default_factory=list)


def deep_task(
    request: TrainRequest, settings: Settings, store: Store, vault: SecretVault
) -> DeepTask | None:
    """The deep-learning task a train request asks for; None: the tabular engine's.

    ``text_classification`` is a fine-tuned transformer when a gpu or a backbone is named (the
    local TF-IDF model otherwise). ``task='auto'`` takes the layout tools/deep recognises in
    the dataset (an image folder, COCO, CoNLL, an image/token/text-pair/chat table); a plain
    table of text and labels stays tabular unless a gpu or backbone is named.
    """
    wants_network = request.gpu is not None or request.backbone is not None
    if request.task in DEEP_TASKS:
        return request.task  # type: ignore[return-value]  # DEEP_TASKS ⊂ DeepTask
    if request.task == "text_classification":
        return "text_classification" if wants_network else None
    if request.task != "auto":
        return None
    try:
        path = resolve_input(request.dataset, settings, store, vault)
    except (DatasetError, InvalidInput, NotFound):
        return None  # the tabular path resolves it its own way and says what is wrong
    try:
        layout = _sniffed(path)
    except DatasetError:
        if path.is_dir() and any(is_image(p) for p in path.rglob("*")):
            raise  # images the tabular engine could not use either: the deep error says why
        return None  # not a deep layout: the tabular path reports what is wrong, if anything
    if layout is None:
        return None
    if layout.kind == "text_table" and not wants_network:
        return None
    return layout.tasks[0]


def _sniffed(path: Path) -> DeepLayout | None:
    """The layout of a folder or annotation file; of a table, from its first rows only (every
    tabular train_model(task='auto') comes here: a large table is not read twice). None: a
    table whose columns and first values fit no layout, told without loading it into pandas
    (the server, which runs this, would hold pandas from then on)."""
    if path.is_file() and path.suffix.lower() in SNIFFED_TABLES:
        from mltrainer.tools.profiling import read_table
        from mltrainer.tools.profiling.peek import peek_table

        head = peek_table(path, SNIFF_ROWS, text_only=True)
        if not may_have_layout(head.columns, head.values):
            return None
        return detect_frame_layout(read_table(path, nrows=SNIFF_ROWS), str(path))
    return detect_layout(path)


def deep_spec(
    settings: Settings,
    store: Store,
    vault: SecretVault,
    job_id: str,
    request: TrainRequest,
    task: DeepTask,
) -> tuple[RemoteSpec, DeepPlan]:
    """Plan, prepare the data and render the script under the job's folder; its spec."""
    path = resolve_input(request.dataset, settings, store, vault)
    layout = detect_layout(path)
    plan = plan_deep(
        layout,
        DeepRequest(
            task=task,
            runtime=request.runtime,
            gpu=request.gpu,
            backbone=request.backbone,
            seed=request.seed,
            local_gpu_memory_gb=local_gpu_memory_gb() if request.runtime == "local" else None,
        ),
    )
    input_dir = job_folder(settings, job_id) / INPUT
    prepare_input(layout, plan, input_dir)
    folder = run_dir(settings, job_id, 1)
    render(plan, folder, input_dir)
    run = DeepRun(
        job_id=job_id,
        model_id=new_id("model"),
        task=plan.task,
        target=request.target,
        backbone=plan.backbone,
        metric=plan.metric,
        greater_is_better=plan.greater_is_better,
        labels=plan.labels,
    )
    (folder / RUN_FILE).write_text(run.model_dump_json(indent=2), encoding="utf-8")
    readable(folder)
    readable(input_dir)
    spec = RemoteSpec(
        job_id=job_id,
        kind="deep",
        run_dir=folder,
        entry=SCRIPT,
        input_dir=input_dir,
        requirements=_requirements(request, plan),
        resources=_resources(request, plan),
        outputs=[],
        internet=True,  # the pretrained checkpoint is downloaded from the Hub at run time
        title=f"mltrainer {job_id}: {plan.task} with {plan.backbone}",
    )
    return spec, plan


def planned(plan: DeepPlan) -> TrainOutcome:
    """The job's result before its model exists: the task, metric, backbone and every choice
    of the plan with its reason (what a dry run shows the person before money is spent)."""
    return TrainOutcome(
        task=plan.task,
        metric=plan.metric,
        model_name=plan.backbone,
        decisions=[Decision.model_validate(d.model_dump()) for d in plan.decisions],
    )


def read_run(folder: Path) -> DeepRun:
    return DeepRun.model_validate_json((folder / RUN_FILE).read_text("utf-8"))


def _resources(request: TrainRequest, plan: DeepPlan) -> Resources:
    # As for the engine: a Kaggle session's CPU and memory come with its accelerator.
    provider = catalogue().providers.get(request.runtime)
    defaults = None if request.runtime == "kaggle" or provider is None else provider.defaults
    return Resources(
        gpu=plan.gpu if request.runtime != "local" else None,
        cpu=defaults.cpu if defaults else None,
        memory_gb=defaults.memory_gb if defaults else None,
        timeout_s=request.time_budget_s + OVERHEAD_S,
    )


def _requirements(request: TrainRequest, plan: DeepPlan) -> list[str]:
    """Modal builds the run's image from them: the versions the dry run used here. A Kaggle
    image comes with torch and transformers built for its GPUs: they are kept (pip installs
    only what is missing), as the local runtime's own packages are."""
    return pinned(plan.requirements) if request.runtime == "modal" else list(plan.requirements)


def pinned(names: list[str]) -> list[str]:
    """The script's requirements at the versions installed here, the ones its dry run used
    (a package not installed here is left unpinned)."""
    pins = []
    for text in names:
        name = Requirement(text).name
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pins.append(text)
    return pins


def check_deep_request(request: TrainRequest) -> None:
    """What the tabular engine offers and a deep run does not: refused by name."""
    if request.iterate or request.deploy_to or request.parallel > 1:
        raise InvalidInput(
            "iterate, deploy_to and parallel are offered for the tabular engine, not for the "
            "deep-learning tasks.",
            next_step="Leave them out for a deep-learning task.",
        )

"""From a request to the run folder and ``RemoteSpec`` a runtime ships.

Two kinds of job run elsewhere: the AutoML engine (``train_model(runtime=...)``: its entry
point, ``engine.json`` and the table) and a script the assistant wrote (``submit_training``:
the script as ``train.py`` and its data). Everything lives under the job's folder,
``$MLTRAINER_HOME/jobs/<job_id>/`` (see files.py); a planner's resubmission gets its own
run folder and submission name (``<job_id>-2``), so that it is never taken for the first.
"""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path, PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement

from mltrainer.state.errors import InvalidInput
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store, new_id
from mltrainer.tools.runtimes.base import RemoteSpec, Resources
from mltrainer.tools.runtimes.catalogue import catalogue
from mltrainer.tools.runtimes.engine_entry import CONFIG_FILE, MODEL_DIR, OUTCOME_FILE, EngineRun
from mltrainer.tools.runtimes.files import INPUT, RUN, link_or_copy, link_tree, readable
from mltrainer.tools.runtimes.models import ScriptRequest
from mltrainer.tools.runtimes.source import pinned_requirements
from mltrainer.tools.training.request import TrainRequest

ENTRY = "train.py"
# Beyond the engine's time budget: loading and profiling the data, the final refit on every
# row, the plots and the card. The timeout (what is paid for at most) is budget + this.
ENGINE_OVERHEAD_S = 600
MAX_REQUIREMENTS = 50
MAX_OUTPUTS = 50
PART_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


def job_folder(settings: Settings, job_id: str) -> Path:
    return settings.jobs_dir / job_id


def submission_name(job_id: str, submission: int) -> str:
    """The name a submission is found by: the job id, then ``<job_id>-2`` for a resubmission."""
    return job_id if submission == 1 else f"{job_id}-{submission}"


def run_dir(settings: Settings, job_id: str, submission: int) -> Path:
    name = RUN if submission == 1 else f"{RUN}-{submission}"
    return job_folder(settings, job_id) / name


def engine_resources(request: TrainRequest) -> Resources:
    # A Kaggle session's CPU and memory come with the accelerator and cannot be asked for
    # (a T4 x2 session has less memory than a CPU one): the engine asks for none there.
    fixed = request.runtime == "kaggle"
    defaults = None if fixed else catalogue().providers.get(request.runtime)
    return Resources(
        gpu=request.gpu,
        cpu=defaults.defaults.cpu if defaults else None,
        memory_gb=defaults.defaults.memory_gb if defaults else None,
        timeout_s=request.time_budget_s + ENGINE_OVERHEAD_S,
        parallel=request.parallel,
    )


def engine_spec(
    settings: Settings, job_id: str, request: TrainRequest, *, submission: int = 1
) -> RemoteSpec:
    """Write the engine's run folder (entry point + engine.json) and link the table."""
    table = Path(request.dataset)
    input_dir = job_folder(settings, job_id) / INPUT
    link_or_copy(table, input_dir / table.name)
    folder = run_dir(settings, job_id, submission)
    folder.mkdir(parents=True, exist_ok=True)
    entry = resources.files("mltrainer.tools.runtimes").joinpath("engine_entry.py")
    (folder / ENTRY).write_text(entry.read_text("utf-8"), encoding="utf-8")
    run = EngineRun(
        job_id=job_id,
        model_id=new_id("model"),
        data_file=table.name,
        request=request.model_dump(mode="json"),
    )
    (folder / CONFIG_FILE).write_text(run.model_dump_json(indent=2), encoding="utf-8")
    readable(folder)
    readable(input_dir)
    return RemoteSpec(
        job_id=submission_name(job_id, submission),
        kind="engine",
        run_dir=folder,
        entry=ENTRY,
        input_dir=input_dir,
        requirements=pinned_requirements(),
        resources=engine_resources(request),
        outputs=[OUTCOME_FILE, MODEL_DIR],
        # The model must load here, so it is trained with this machine's exact library
        # versions: a Kaggle kernel installs the ones its image lacks from PyPI (the data stays
        # a private Kaggle dataset; no credential is in the kernel). Modal builds them in.
        internet=request.runtime == "kaggle",
        title=f"mltrainer {job_id}: {table.name} -> {request.target or 'clusters'}",
    )


def script_spec(
    settings: Settings, job_id: str, request: ScriptRequest, data: Path | None
) -> RemoteSpec:
    """Write the script's run folder; its data is the dataset's file or folder."""
    folder = run_dir(settings, job_id, 1)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ENTRY).write_text(request.script, encoding="utf-8")
    readable(folder)
    input_dir = None
    if data is not None:  # under the job's folder: the sandbox and the worker may read it
        input_dir = job_folder(settings, job_id) / INPUT
        if data.is_file():
            link_or_copy(data, input_dir / data.name)
        else:
            link_tree(data, input_dir)
        readable(input_dir)
    return RemoteSpec(
        job_id=job_id,
        kind="script",
        run_dir=folder,
        entry=ENTRY,
        input_dir=input_dir,
        requirements=checked_requirements(request.requirements),
        resources=Resources(
            gpu=request.gpu,
            cpu=request.cpu,
            memory_gb=request.memory_gb,
            timeout_s=request.timeout_s,
        ),
        secrets=request.secrets,
        outputs=checked_outputs(request.outputs),
        title=f"mltrainer {job_id}: a training script",
    )


def resolve_input(dataset: str, settings: Settings, store: Store, vault: SecretVault) -> Path:
    """The file or folder a script's ``dataset`` names: a local path (under the allowed roots),
    a dataset_id, or a reference downloaded first. A folder is shipped whole, so it must hold
    nothing the path guard refuses (keys, .env files)."""
    from mltrainer.state.guard import PathPolicy
    from mltrainer.tools.datasets.refs import parse_ref

    policy = PathPolicy(settings)
    parsed = parse_ref(dataset)
    if parsed.source == "local" and parsed.path is not None and parsed.file is None:
        found = policy.check(parsed.path)
    else:
        from mltrainer.tools.datasets.fetch import cached_record, fetch  # clients: only here

        if parsed.dataset_id:
            record = cached_record(store, parsed.dataset_id)
        else:
            result = fetch(dataset, settings=settings, store=store, vault=vault)
            record = store.get_dataset(result.dataset_id)
        root = Path(record.local_dir)
        found = policy.check_member(root, parsed.file) if parsed.file else root
    if found.is_dir():
        policy.check_tree(found, dataset)
    return found


def checked_requirements(requirements: list[str]) -> list[str]:
    """PEP 508 requirements by name only: no URLs, paths or pip options (they would fetch
    code from anywhere into the paid run)."""
    if len(requirements) > MAX_REQUIREMENTS:
        raise InvalidInput(f"At most {MAX_REQUIREMENTS} requirements.")
    checked = []
    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement as exc:
            raise InvalidInput(
                f"Requirement {text[:80]!r} is not a package specification ({exc}).",
                next_step="Write 'name', 'name==1.2' or 'name>=1.0,<2'; no URLs or pip options.",
            ) from None
        if requirement.url or text.lstrip().startswith("-"):
            raise InvalidInput(
                f"Requirement {text[:80]!r} names a URL or an option: only packages from the "
                "package index are installed.",
                next_step="Name the package and its version, e.g. 'lightgbm==4.5.0'.",
            )
        checked.append(str(requirement))
    return checked


def checked_outputs(outputs: list[str]) -> list[str]:
    """Paths inside the output folder, relative and plain (no '..', no absolute path)."""
    if len(outputs) > MAX_OUTPUTS:
        raise InvalidInput(f"At most {MAX_OUTPUTS} outputs.")
    for text in outputs:
        path = PurePosixPath(text)
        if not text or path.is_absolute() or not all(PART_RE.fullmatch(p) for p in path.parts):
            raise InvalidInput(
                f"Output {text[:80]!r} is not a plain path inside the output folder.",
                next_step="Name files or folders relative to MLTRAINER_OUTPUT_DIR, e.g. "
                "'model.pt' or 'metrics/scores.json' (letters, digits, '_', '-', '.').",
            )
        if ".." in path.parts:
            raise InvalidInput(f"Output {text[:80]!r} leads out of the output folder.")
    return outputs


def clear_submission(settings: Settings, job_id: str, submission: int) -> None:
    """Forget a submission's run folder (a dry run that was never submitted)."""
    shutil.rmtree(run_dir(settings, job_id, submission), ignore_errors=True)

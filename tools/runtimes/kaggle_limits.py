"""What a Kaggle kernel accepts, checked before anything is sent: the catalogue of Kaggle's
machines and limits (one typed constant with its sources and date), the kernel and dataset
slugs derived from a job id, ``check(spec)`` and the (free) cost estimate.

Until tools/runtimes/data/catalogue.json holds Kaggle's figures, they live in ``CATALOGUE``
below. Sources: kaggle.com/docs/notebooks ("Technical specifications": 12 h per CPU/GPU
session, 20 GB of saved output in /kaggle/working, 4 CPU cores and 30 GB RAM on CPU, 4 cores
and 29 GB with GPUs), kaggle.com/docs/efficient-gpu-usage (a weekly GPU quota of about 30 h,
which Kaggle adjusts from week to week), kaggle.com/docs/datasets (200 GB per dataset), and
the kaggle client 2.2.5 (``kaggle_api_extended._RETIRED_ACCELERATORS``: the P100 is retired
and sessions asking for it run on T4 ×2). The bundle cap is ours, not Kaggle's.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from pydantic import BaseModel

from mltrainer.state.errors import InvalidInput, MLTrainerError
from mltrainer.tools.datasets.refs import DatasetRef, parse_ref, safe_member
from mltrainer.tools.runtimes.base import CostEstimate, RemoteSpec, SpecProblem

# A job id maps to a slug injectively ('_' -> '-'), so two jobs never share a kernel.
JOB_ID_RE = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
OWNER = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"  # a Kaggle user name
OWNER_RE = re.compile(rf"^{OWNER}$")
KERNEL_PREFIX, DATASET_PREFIX = "mltrainer-", "mltrainer-data-"
MAX_SLUG, MIN_KERNEL_SLUG = 50, 5  # Kaggle: dataset slugs 6-50, kernel slugs >= 5
GB = 1024**3


class Machine(BaseModel):
    """A Kaggle session's fixed machine: nothing in it is selectable but the accelerator."""

    label: str
    machine_shape: str | None = None  # Kaggle's name in the kernel metadata
    gpus: int = 0
    cpu_cores: int
    memory_gb: float


class KaggleCatalogue(BaseModel):
    source: str
    as_of: date
    cpu: Machine
    gpus: dict[str, Machine]  # our GPU name -> the machine Kaggle runs it on
    retired: dict[str, str]  # our GPU name -> what Kaggle does instead
    session_limit_s: int
    weekly_gpu_hours: float
    max_dataset_bytes: int
    max_output_bytes: int
    max_bundle_bytes: int  # ours: the run folder travels inside the kernel's source


CATALOGUE = KaggleCatalogue(
    source="kaggle.com/docs/notebooks, /docs/efficient-gpu-usage, /docs/datasets; "
    "kaggle client 2.2.5",
    as_of=date(2026, 11, 29),
    cpu=Machine(label="CPU (4 cores, 30 GB)", cpu_cores=4, memory_gb=30),
    gpus={
        "T4": Machine(
            label="T4 ×2", machine_shape="NvidiaTeslaT4", gpus=2, cpu_cores=4, memory_gb=29
        ),
    },
    retired={"P100": "Kaggle retired the P100: sessions that ask for it run on T4 ×2 instead"},
    session_limit_s=12 * 3600,
    weekly_gpu_hours=30,
    max_dataset_bytes=200 * GB,
    max_output_bytes=20 * GB,
    max_bundle_bytes=4 * 1024**2,
)


def kernel_slug(job_id: str) -> str:
    return KERNEL_PREFIX + job_id.replace("_", "-")


def kernel_title(job_id: str) -> str:
    """The title Kaggle turns into ``kernel_slug(job_id)`` (a kernel's slug is its title,
    lower-cased, with dashes): a title that differs would give the kernel another slug."""
    return f"mltrainer {job_id}"


def dataset_slug(job_id: str) -> str:
    return DATASET_PREFIX + job_id.replace("_", "-")


def dataset_title(job_id: str) -> str:
    return f"mltrainer data {job_id}"


def machine_for(spec: RemoteSpec, catalogue: KaggleCatalogue = CATALOGUE) -> Machine:
    gpu = spec.resources.gpu
    return catalogue.cpu if gpu is None else catalogue.gpus[gpu.strip().upper()]


def check(spec: RemoteSpec, catalogue: KaggleCatalogue = CATALOGUE) -> list[SpecProblem]:
    """Everything Kaggle would refuse, or that cannot work there; no network."""
    problems = _check_job_id(spec.job_id)
    problems += _check_resources(spec, catalogue)
    problems += _check_data(spec, catalogue)
    problems += _check_run_dir(spec, catalogue)
    if spec.secrets:
        problems.append(
            SpecProblem(
                field="secrets",
                message="Kaggle has no API to give a kernel secrets, so a run that needs "
                f"{', '.join(spec.secrets)} cannot go to Kaggle (no value is ever written into "
                "a kernel's script or metadata). Run it on runtime='modal' or locally instead.",
            )
        )
    problems += _check_requirements(spec.requirements)
    for path in spec.outputs:
        try:
            safe_member(path)
        except MLTrainerError as exc:
            problems.append(SpecProblem(field="outputs", message=str(exc)))
    return problems


def _check_requirements(requirements: list[str]) -> list[SpecProblem]:
    from packaging.requirements import InvalidRequirement, Requirement

    problems = []
    for text in requirements:
        try:
            Requirement(text)
        except InvalidRequirement:
            problems.append(
                SpecProblem(
                    field="requirements",
                    message=f"'{text[:80]}' is not a pip requirement (e.g. 'xgboost==2.1.1'); "
                    "options such as --index-url are not passed on.",
                )
            )
    return problems


def valid_job_id(job_id: str) -> bool:
    """Whether ``job_id`` makes valid kernel and dataset slugs (and nothing else can)."""
    return bool(JOB_ID_RE.fullmatch(job_id)) and len(job_id) <= MAX_SLUG - len(DATASET_PREFIX)


def _check_job_id(job_id: str) -> list[SpecProblem]:
    longest = MAX_SLUG - len(DATASET_PREFIX)
    if valid_job_id(job_id):
        return []
    return [
        SpecProblem(
            field="job_id",
            message=f"'{job_id[:80]}' cannot name a Kaggle kernel: the kernel and dataset slugs "
            f"are made from the job id, which must be lower-case letters and digits joined by "
            f"single underscores, at most {longest} characters (e.g. 'job_3f2a9c0d1e2f').",
        )
    ]


def _check_resources(spec: RemoteSpec, catalogue: KaggleCatalogue) -> list[SpecProblem]:
    res, problems = spec.resources, []
    gpu = res.gpu.strip().upper() if res.gpu is not None else None
    valid = ", ".join(f"'{name}' ({m.label})" for name, m in catalogue.gpus.items())
    if gpu in catalogue.retired:
        why = catalogue.retired[gpu]
        problems.append(SpecProblem(field="resources.gpu", message=f"{why}. Ask for {valid}."))
        return problems
    if gpu is not None and gpu not in catalogue.gpus:
        problems.append(
            SpecProblem(
                field="resources.gpu",
                message=f"Kaggle kernels have no GPU '{res.gpu}'. Valid: {valid}, or none (CPU).",
            )
        )
        return problems
    machine = catalogue.cpu if gpu is None else catalogue.gpus[gpu]
    if gpu is not None and res.gpu_count > machine.gpus:
        problems.append(
            SpecProblem(
                field="resources.gpu_count",
                message=f"A Kaggle {gpu} session has {machine.gpus} GPUs ({machine.label}); "
                f"ask for at most {machine.gpus}.",
            )
        )
    fixed = (
        f"Kaggle's CPU and memory are not selectable: a {machine.label} session has "
        f"{machine.cpu_cores} CPU cores and {machine.memory_gb:g} GB of memory"
    )
    if res.cpu is not None and res.cpu > machine.cpu_cores:
        problems.append(
            SpecProblem(field="resources.cpu", message=f"{fixed}; ask for at most that.")
        )
    if res.memory_gb is not None and res.memory_gb > machine.memory_gb:
        problems.append(
            SpecProblem(field="resources.memory_gb", message=f"{fixed}; ask for at most that.")
        )
    if res.timeout_s > catalogue.session_limit_s:
        problems.append(timeout_problem(res.timeout_s, catalogue))
    if res.parallel > 1:
        problems.append(
            SpecProblem(
                field="resources.parallel",
                message=f"parallel={res.parallel}: a Kaggle kernel is one session on one "
                "machine, so the engine's search cannot fan out there. Leave parallel at 1 "
                "on Kaggle, or use runtime='modal' (or 'local', up to this machine's cores).",
            )
        )
    return problems


def timeout_problem(timeout_s: int, catalogue: KaggleCatalogue) -> SpecProblem:
    hours = catalogue.session_limit_s / 3600
    return SpecProblem(
        field="resources.timeout_s",
        message=f"A Kaggle session ends after {hours:g} h ({catalogue.session_limit_s} s); "
        f"{timeout_s} s is longer. Ask for at most {catalogue.session_limit_s} s, or use "
        "runtime='modal' for a longer run.",
    )


def source_ref(spec: RemoteSpec) -> DatasetRef | None:
    """``spec.dataset_ref`` parsed, when it names a Kaggle dataset or competition."""
    if spec.dataset_ref is None:
        return None
    ref = parse_ref(spec.dataset_ref)
    if ref.source not in ("kaggle", "kaggle-competition") or ref.file:
        raise InvalidInput(
            f"'{spec.dataset_ref[:120]}' cannot be mounted in a Kaggle kernel: a kernel mounts "
            "a whole Kaggle dataset (kaggle:OWNER/SLUG[@VERSION]) or competition "
            "(kaggle-competition:SLUG).",
            next_step="Give the reference without a file (the script picks files from "
            "MLTRAINER_INPUT_DIR), or pass other data as input_dir.",
        )
    return ref


def _check_data(spec: RemoteSpec, catalogue: KaggleCatalogue) -> list[SpecProblem]:
    if spec.dataset_ref is not None and spec.input_dir is not None:
        return [
            SpecProblem(
                field="dataset_ref",
                message="Give either dataset_ref (mounted from Kaggle) or input_dir "
                "(uploaded as a private dataset), not both.",
            )
        ]
    try:
        source_ref(spec)
    except MLTrainerError as exc:
        return [SpecProblem(field="dataset_ref", message=str(exc))]
    if spec.input_dir is None:
        return []
    problems, size = _tree("input_dir", spec.input_dir)
    if not problems and size == 0:
        problems.append(
            SpecProblem(field="input_dir", message="The data folder is empty: nothing to upload.")
        )
    if size > catalogue.max_dataset_bytes:
        problems.append(
            SpecProblem(
                field="input_dir",
                message=f"The data folder holds {size:,} bytes; a Kaggle dataset holds at most "
                f"{catalogue.max_dataset_bytes:,}. Sample or compress the data, or use "
                "runtime='modal'.",
            )
        )
    return problems


def _check_run_dir(spec: RemoteSpec, catalogue: KaggleCatalogue) -> list[SpecProblem]:
    problems, size = _tree("run_dir", spec.run_dir)
    try:
        entry = safe_member(spec.entry)
    except MLTrainerError as exc:
        return [*problems, SpecProblem(field="entry", message=str(exc))]
    if not problems and not (spec.run_dir / entry).is_file():
        problems.append(
            SpecProblem(field="entry", message=f"There is no file '{entry}' in the run folder.")
        )
    if not entry.endswith(".py"):
        problems.append(SpecProblem(field="entry", message="The entry must be a Python script."))
    if size > catalogue.max_bundle_bytes:
        problems.append(
            SpecProblem(
                field="run_dir",
                message=f"The run folder holds {size:,} bytes; it travels inside the kernel's "
                f"source, which we keep under {catalogue.max_bundle_bytes:,}. Move data files "
                "to input_dir.",
            )
        )
    return problems


def _tree(field: str, root: Path) -> tuple[list[SpecProblem], int]:
    """Problems of a folder that is shipped (missing, links out of it) and its size in bytes."""
    if not root.is_dir():
        return [SpecProblem(field=field, message=f"'{root}' is not a folder.")], 0
    size = 0
    for path in root.rglob("*"):
        if path.is_symlink():
            return [
                SpecProblem(
                    field=field,
                    message=f"'{path.relative_to(root)}' is a symbolic link; only plain files "
                    "are shipped to Kaggle (a link could reach files outside the folder).",
                )
            ], size
        if path.is_file():
            size += path.stat().st_size
    return [], size


def estimate(spec: RemoteSpec, catalogue: KaggleCatalogue = CATALOGUE) -> CostEstimate:
    """Kaggle kernels are free; a GPU run spends the weekly GPU quota instead of money."""
    timeout = spec.resources.timeout_s
    if timeout > catalogue.session_limit_s:
        problem = timeout_problem(timeout, catalogue)
        raise InvalidInput(f"{problem.field}: {problem.message}")
    hours = timeout / 3600
    limit = f"a session ends after {catalogue.session_limit_s / 3600:g} h"
    if spec.resources.gpu is None:
        basis = f"Kaggle kernels are free; CPU sessions use no accelerator quota; {limit}."
    else:
        machine = machine_for(spec, catalogue)
        basis = (
            f"Kaggle kernels are free: a {machine.label} session counts its run time against "
            f"the weekly GPU quota (about {catalogue.weekly_gpu_hours:g} h a week, adjusted by "
            f"Kaggle); this run can use up to {hours:.2f} h of it; {limit}."
        )
    return CostEstimate(
        usd=0.0, usd_per_hour=0.0, basis=basis, prices_as_of=catalogue.as_of, free=True
    )

"""The Kaggle kernels runtime before anything is sent: what Kaggle would refuse, the free
estimate, the slugs and the generated script. Every refusal here sends no request."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from runtime_kaggle_fixtures import JOB, KaggleEnv, make_spec
from slugify import slugify  # what the kaggle client uses to check a kernel's title

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.runtimes.base import Resources
from mltrainer.tools.runtimes.kaggle import KaggleRuntime
from mltrainer.tools.runtimes.kaggle_limits import (
    CATALOGUE,
    dataset_slug,
    dataset_title,
    kernel_slug,
    kernel_title,
)
from mltrainer.tools.runtimes.kaggle_script import plan

pytest_plugins = ["runtime_kaggle_fixtures"]


def problems(kg: KaggleEnv, spec_root: Path, **changes: object) -> dict[str, str]:
    found = kg.runtime.validate(make_spec(spec_root, **changes))  # type: ignore[arg-type]
    return {p.field: p.message for p in found}


def test_a_plain_spec_passes_and_validating_sends_nothing(kg: KaggleEnv, tmp_path: Path) -> None:
    assert problems(kg, tmp_path) == {}
    gpu = Resources(gpu="t4", gpu_count=2, cpu=4, memory_gb=16, timeout_s=12 * 3600)
    assert problems(kg, tmp_path, resources=gpu) == {}
    assert kg.fake.requests == []


@pytest.mark.parametrize(
    "job_id", ["Job_0123", "job__01", "job-01", "../etc", "job 01", "job_01\n", "j" * 36]
)
def test_a_job_id_that_makes_no_valid_slug_is_refused(
    kg: KaggleEnv, tmp_path: Path, job_id: str
) -> None:
    found = problems(kg, tmp_path, job_id=job_id)
    assert list(found) == ["job_id"]
    assert "lower-case letters and digits joined by single underscores" in found["job_id"]
    with pytest.raises(InvalidInput, match="Kaggle would refuse this run: job_id"):
        kg.runtime.submit(make_spec(tmp_path, job_id=job_id))
    with pytest.raises(InvalidInput, match="not a job id"):
        kg.runtime.find(job_id)
    assert kg.fake.requests == []


def test_unknown_and_retired_accelerators_are_refused_with_the_valid_list(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    unknown = problems(kg, tmp_path, resources=Resources(gpu="A100", timeout_s=600))
    assert "no GPU 'A100'" in unknown["resources.gpu"]
    assert "'T4' (T4 ×2)" in unknown["resources.gpu"]
    retired = problems(kg, tmp_path, resources=Resources(gpu="P100", timeout_s=600))
    assert "retired the P100" in retired["resources.gpu"]
    assert "'T4' (T4 ×2)" in retired["resources.gpu"]
    three = problems(kg, tmp_path, resources=Resources(gpu="T4", gpu_count=3, timeout_s=600))
    assert "has 2 GPUs" in three["resources.gpu_count"]
    assert kg.fake.requests == []


def test_cpu_memory_and_time_beyond_a_kaggle_session_are_refused(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    big = Resources(cpu=8, memory_gb=64, timeout_s=12 * 3600 + 1)
    found = problems(kg, tmp_path, resources=big)
    assert "not selectable" in found["resources.cpu"] and "4 CPU cores" in found["resources.cpu"]
    assert "30 GB of memory" in found["resources.memory_gb"]
    assert "ends after 12 h (43200 s)" in found["resources.timeout_s"]
    with pytest.raises(InvalidInput, match=r"resources.timeout_s: A Kaggle session ends"):
        kg.runtime.estimate_cost(make_spec(tmp_path, resources=big))
    assert kg.fake.requests == []


def test_a_spec_with_secrets_is_refused_and_nothing_is_pushed(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    found = problems(kg, tmp_path, secrets=["secret://WANDB_KEY"])
    assert "Kaggle has no API to give a kernel secrets" in found["secrets"]
    assert "secret://WANDB_KEY" in found["secrets"]
    with pytest.raises(InvalidInput, match="secrets: Kaggle has no API"):
        kg.runtime.submit(make_spec(tmp_path, secrets=["secret://WANDB_KEY"]))
    assert kg.fake.requests == []


def test_an_oversized_dataset_is_refused_before_any_upload(kg: KaggleEnv, tmp_path: Path) -> None:
    small = CATALOGUE.model_copy(update={"max_dataset_bytes": 20})
    runtime = KaggleRuntime(kg.settings, kg.vault, catalogue=small)
    found = {p.field: p.message for p in runtime.validate(make_spec(tmp_path))}
    assert "a Kaggle dataset holds at most 20" in found["input_dir"]
    with pytest.raises(InvalidInput, match="input_dir: The data folder holds"):
        runtime.submit(make_spec(tmp_path))
    assert kg.fake.requests == []


def test_data_and_run_folders_that_cannot_ship_are_refused(kg: KaggleEnv, tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    os.symlink("/etc/passwd", tmp_path / "data" / "passwd")
    assert "symbolic link" in problems(kg, tmp_path)["input_dir"]
    (tmp_path / "data" / "passwd").unlink()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "empty" in problems(kg, tmp_path, input_dir=empty)["input_dir"]
    assert "no file 'missing.py'" in problems(kg, tmp_path, entry="missing.py")["entry"]
    assert "relative path" in problems(kg, tmp_path, entry="../train.py")["entry"]
    assert "Python script" in problems(kg, tmp_path, entry="config.json")["entry"]
    assert "relative path" in problems(kg, tmp_path, outputs=["/etc"])["outputs"]
    bad_pin = problems(kg, tmp_path, requirements=["--index-url=http://evil"])
    assert "not a pip requirement" in bad_pin["requirements"]
    assert problems(kg, tmp_path, requirements=["scikit-learn==1.5.2"]) == {}
    assert spec.input_dir is not None and kg.fake.requests == []


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        ("hf:owner/name", "cannot be mounted in a Kaggle kernel"),
        ("kaggle:uciml/iris/Iris.csv", "without a file"),
        ("kaggle-competition:titanic#train.csv", "without a file"),
        ("kaggle:nonsense", "dataset reference"),
    ],
)
def test_only_whole_kaggle_datasets_and_competitions_can_be_mounted(
    kg: KaggleEnv, tmp_path: Path, ref: str, why: str
) -> None:
    assert why in problems(kg, tmp_path, input_dir=None, dataset_ref=ref)["dataset_ref"]
    assert "not both" in problems(kg, tmp_path, dataset_ref="kaggle:uciml/iris")["dataset_ref"]
    ok = problems(kg, tmp_path, input_dir=None, dataset_ref="kaggle-competition:titanic")
    assert ok == {}


def test_the_estimate_is_free_and_names_the_quota_it_spends(kg: KaggleEnv, tmp_path: Path) -> None:
    gpu = kg.runtime.estimate_cost(
        make_spec(tmp_path, resources=Resources(gpu="T4", timeout_s=5400))
    )
    assert gpu.free and gpu.usd == 0 and gpu.usd_per_hour == 0
    assert gpu.prices_as_of == CATALOGUE.as_of
    assert "T4 ×2" in gpu.basis and "weekly GPU quota" in gpu.basis
    assert "about 30 h a week" in gpu.basis and "up to 1.50 h of it" in gpu.basis
    cpu = kg.runtime.estimate_cost(make_spec(tmp_path))
    assert cpu.free and "no accelerator quota" in cpu.basis
    assert kg.fake.requests == []


def test_titles_resolve_to_the_slugs_kaggle_derives_from_them() -> None:
    # Kaggle makes a kernel's slug from its title: a mismatch would push under another name.
    assert kernel_slug(JOB) == "mltrainer-job-0123456789ab"
    assert slugify(kernel_title(JOB)) == kernel_slug(JOB)
    assert slugify(dataset_title(JOB)) == dataset_slug(JOB)
    assert 6 <= len(dataset_title(JOB)) <= 50 and len(dataset_slug("a" * 35)) == 50


def test_the_script_is_deterministic_and_changes_with_the_code(tmp_path: Path) -> None:
    def digest(spec_root: Path) -> str:
        spec = make_spec(spec_root)
        return plan(
            spec,
            owner="someone",
            machine=CATALOGUE.cpu,
            mounts=["x"],
            dataset_sources=[],
            competition_sources=[],
            data_digest="abc",
        ).digest

    first = digest(tmp_path)
    assert digest(tmp_path) == first
    os.utime(tmp_path / "run" / "helpers.py", (1, 1))  # times do not matter ...
    (tmp_path / "run" / "__pycache__").mkdir()
    (tmp_path / "run" / "__pycache__" / "helpers.cpython-311.pyc").write_bytes(b"\0")
    assert digest(tmp_path) == first  # ... nor byte-code caches ...
    (tmp_path / "run" / "helpers.py").write_text("# changed\n")  # ... contents do
    assert digest(tmp_path) != first


def test_spec_values_enter_the_script_as_literals_only(tmp_path: Path) -> None:
    hostile = 'x"""\nimport os; os.system("echo pwned")\n#'
    spec = make_spec(tmp_path, title=hostile, requirements=['pkg ; python_version > "3"'])
    kernel = plan(
        spec,
        owner="someone",
        machine=CATALOGUE.gpus["T4"],
        mounts=['a"b'],
        dataset_sources=[],
        competition_sources=[],
        data_digest=None,
    )
    tree = ast.parse(kernel.script)
    values = {
        node.targets[0].id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    assert ast.literal_eval(values["TITLE"]) == hostile
    assert ast.literal_eval(values["MOUNTS"]) == ['a"b']
    assert "pwned" not in "".join(
        ast.unparse(n) for n in tree.body if not isinstance(n, ast.Assign)
    )
    assert kernel.metadata.enable_gpu and kernel.metadata.machine_shape == "NvidiaTeslaT4"
    assert kernel.metadata.is_private and not kernel.metadata.enable_internet
    with pytest.raises(InvalidInput, match="not a job id"):
        plan(
            make_spec(tmp_path, job_id="job_1\nimport os"),
            owner="someone",
            machine=CATALOGUE.cpu,
            mounts=[],
            dataset_sources=[],
            competition_sources=[],
            data_digest=None,
        )

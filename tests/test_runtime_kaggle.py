"""The Kaggle kernels runtime through the real kaggle/kagglesdk client against the fake Kaggle
API: private datasets, the kernel push, finding it again, status, logs, output and cancel."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.kaggle import USERNAME
from fakes.kaggle_kernels import FakeKernel
from runtime_kaggle_fixtures import DATASET_REF, JOB, KERNEL_REF, KaggleEnv, make_spec

from mltrainer.state.errors import InvalidInput, PermissionDenied
from mltrainer.tools.runtimes.base import Handle, Resources
from mltrainer.tools.runtimes.kaggle import LOG_NAME

pytest_plugins = ["runtime_kaggle_fixtures"]


def test_submit_uploads_a_private_dataset_and_pushes_a_private_script_kernel(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    handle = kg.runtime.submit(make_spec(tmp_path))
    assert handle.runtime == "kaggle" and handle.remote_id == KERNEL_REF
    assert handle.url == f"https://www.kaggle.com/code/{KERNEL_REF}"

    dataset = kg.fake.datasets[DATASET_REF]
    assert dataset.private and dataset.title == f"mltrainer data {JOB}"
    assert dataset.files["train.csv"] == (tmp_path / "data" / "train.csv").read_bytes()
    assert dataset.files["extra/notes.txt"].startswith(b"sub-folders travel")
    [created] = kg.calls("CreateDataset")
    assert created["isPrivate"] is True and created["licenseName"] == "unknown"

    [push] = kg.calls("SaveKernel")
    assert push["slug"] == KERNEL_REF and push["newTitle"] == f"mltrainer {JOB}"
    assert (push["language"], push["kernelType"]) == ("python", "script")
    assert push["isPrivate"] is True
    assert push["enableInternet"] is False and push["enableGpu"] is False
    assert push["datasetDataSources"] == [DATASET_REF]
    assert push.get("competitionDataSources", []) == []
    assert push["sessionTimeoutSeconds"] == 3600 and "machineShape" not in push
    assert push["text"].splitlines()[1] == f"# mltrainer-job: {JOB}"


def test_a_gpu_run_asks_for_kaggles_t4_machine(kg: KaggleEnv, tmp_path: Path) -> None:
    spec = make_spec(tmp_path, resources=Resources(gpu="T4", timeout_s=7200), internet=True)
    kg.runtime.submit(spec)
    [push] = kg.calls("SaveKernel")
    assert push["enableGpu"] is True and push["machineShape"] == "NvidiaTeslaT4"
    assert push["enableInternet"] is True and push["sessionTimeoutSeconds"] == 7200
    assert len(kg.calls("GetAcceleratorQuotaStatistics")) == 1


def test_new_data_makes_a_new_dataset_version_and_the_same_data_uploads_nothing(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    kg.runtime.submit(make_spec(tmp_path))
    uploads = len(kg.calls("StartBlobUpload"))
    (tmp_path / "data" / "train.csv").write_bytes(b"id,x,y\n9,0.2,no\n")
    kg.runtime.submit(make_spec(tmp_path))

    [version] = kg.calls("CreateDatasetVersion")
    assert version["datasetSlug"] == DATASET_REF.split("/")[1]
    assert "mltrainer data sha256:" in version["body"]["versionNotes"]
    assert kg.fake.datasets[DATASET_REF].files["train.csv"] == b"id,x,y\n9,0.2,no\n"
    assert len(kg.calls("CreateDataset")) == 1
    assert len(kg.calls("SaveKernel")) == 2  # new data: a new run of the kernel

    before = len(kg.calls("StartBlobUpload"))
    assert before == 2 * uploads
    kg.runtime.submit(make_spec(tmp_path))  # the very same spec and data again
    assert len(kg.calls("StartBlobUpload")) == before
    assert len(kg.calls("CreateDatasetVersion")) == 1 and len(kg.calls("SaveKernel")) == 2


def test_find_after_a_push_returns_the_same_kernel_and_nothing_is_pushed_twice(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    assert kg.runtime.find(JOB) is None
    handle = kg.runtime.submit(make_spec(tmp_path))
    restarted = kg.fresh_runtime()  # a server that died after pushing
    found = restarted.find(JOB)
    assert found == handle
    assert restarted.submit(make_spec(tmp_path)) == handle  # a retried submission
    assert len(kg.calls("SaveKernel")) == 1 and len(kg.calls("CreateDataset")) == 1


def test_a_changed_spec_for_the_same_job_pushes_a_new_version(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    kg.runtime.submit(make_spec(tmp_path))
    kg.runtime.submit(make_spec(tmp_path, resources=Resources(timeout_s=1800)))
    pushes = kg.calls("SaveKernel")
    assert [p["sessionTimeoutSeconds"] for p in pushes] == [3600, 1800]
    assert len(kg.fake.kernels[KERNEL_REF].pushes) == 2


def test_a_kernel_of_that_name_that_is_not_ours_is_never_overwritten(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    theirs = FakeKernel(USERNAME, KERNEL_REF.split("/")[1])
    theirs.pushes.append({"text": "print('my own notebook')", "language": "python"})
    kg.fake.kernels[KERNEL_REF] = theirs
    with pytest.raises(PermissionDenied, match=r"slug .* is taken by another kernel"):
        kg.runtime.find(JOB)
    with pytest.raises(PermissionDenied, match="taken by another kernel"):
        kg.runtime.submit(make_spec(tmp_path))
    assert kg.calls("SaveKernel") == [] and kg.calls("StartBlobUpload") == []


def test_a_kaggle_dataset_reference_is_mounted_directly_without_an_upload(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    kg.runtime.submit(make_spec(tmp_path, input_dir=None, dataset_ref="kaggle:uciml/iris@3"))
    [push] = kg.calls("SaveKernel")
    assert push["datasetDataSources"] == ["uciml/iris/3"]
    assert "MOUNTS = ['iris']" in push["text"]
    assert kg.calls("StartBlobUpload") == [] and kg.calls("CreateDataset") == []


@pytest.mark.parametrize(
    ("status", "ours"),
    [
        ("QUEUED", "queued"),
        ("RUNNING", "running"),
        ("COMPLETE", "succeeded"),
        ("CANCEL_ACKNOWLEDGED", "cancelled"),
    ],
)
def test_status_follows_the_kernel(kg: KaggleEnv, tmp_path: Path, status: str, ours: str) -> None:
    handle = kg.runtime.submit(make_spec(tmp_path))
    kg.fake.kernels[KERNEL_REF].status = status
    assert kg.runtime.status(handle).status == ours


def test_a_failed_kernel_reports_its_reason_and_the_tail_of_its_log(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    handle = kg.runtime.submit(make_spec(tmp_path))
    kernel = kg.fake.kernels[KERNEL_REF]
    assert kg.runtime.status(handle).status == "queued"
    kernel.status = "RUNNING"
    assert kg.runtime.status(handle).status == "running"
    for n in range(40):
        kernel.say(f"epoch {n}\n")
    kernel.say("KeyError: 'target'\n", "stderr")
    kernel.status, kernel.failure = "ERROR", "Your notebook hit an unhandled error"
    state = kg.runtime.status(handle)
    assert state.status == "failed"
    assert "failed: Your notebook hit an unhandled error" in state.message
    assert "KeyError: 'target'" in state.message and "epoch 39" in state.message
    assert "epoch 5\n" not in state.message  # the tail, not the whole log
    assert f"https://www.kaggle.com/code/{KERNEL_REF}" in state.message


def test_logs_are_read_on_from_a_cursor(kg: KaggleEnv, tmp_path: Path) -> None:
    handle = kg.runtime.submit(make_spec(tmp_path))
    kernel = kg.fake.kernels[KERNEL_REF]
    assert kg.runtime.logs(handle, None).text == ""  # nothing yet while queued
    kernel.say("loading data\n")
    first = kg.runtime.logs(handle, None)
    assert first.text == "loading data\n"
    kernel.say("fitting\n", "stderr")
    second = kg.runtime.logs(handle, first.cursor)
    assert second.text == "fitting\n"
    assert kg.runtime.logs(handle, second.cursor).text == ""
    with pytest.raises(InvalidInput, match="not a log cursor"):
        kg.runtime.logs(handle, "-1")


def test_fetch_brings_back_the_output_folder_and_the_log_only(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    handle = kg.runtime.submit(make_spec(tmp_path))
    kernel = kg.fake.kernels[KERNEL_REF]
    weights = bytes(range(256)) * 4000
    kernel.outputs = {
        "output/model/weights.bin": weights,
        "output/model/meta.json": b'{"rows": 3}',
        "output/metrics.json": b"{}",
        "scratch.txt": b"not part of the output folder",
    }
    kernel.say("done\n")
    kernel.status = "COMPLETE"
    dest = tmp_path / "fetched"
    written = kg.runtime.fetch(handle, dest)
    assert sorted(p.relative_to(dest).as_posix() for p in written) == [
        LOG_NAME,
        "metrics.json",
        "model/meta.json",
        "model/weights.bin",
    ]
    assert (dest / "model" / "weights.bin").read_bytes() == weights
    assert (dest / LOG_NAME).read_text() == "done\n"
    assert not (dest / "scratch.txt").exists()


def test_fetch_refuses_an_output_name_that_leaves_the_folder(kg: KaggleEnv, tmp_path: Path) -> None:
    handle = kg.runtime.submit(make_spec(tmp_path))
    kg.fake.kernels[KERNEL_REF].outputs = {"output/../../evil.txt": b"x"}
    with pytest.raises(PermissionDenied, match="relative path"):
        kg.runtime.fetch(handle, tmp_path / "fetched" / "here")
    assert not list(tmp_path.rglob("evil.txt"))


def test_cancel_says_kaggle_cannot_stop_a_running_kernel(kg: KaggleEnv, tmp_path: Path) -> None:
    handle = kg.runtime.submit(make_spec(tmp_path))
    kg.fake.kernels[KERNEL_REF].status = "RUNNING"
    outcome = kg.runtime.cancel(handle)
    assert not outcome.stopped
    assert "cannot stop a running kernel" in outcome.message
    assert "Kaggle/kaggle-cli#1174" in outcome.message
    assert f"https://www.kaggle.com/code/{KERNEL_REF}" in outcome.message
    kg.fake.kernels[KERNEL_REF].status = "COMPLETE"
    assert kg.runtime.cancel(handle).stopped


def test_a_handle_of_another_runtime_or_a_malformed_id_is_refused(kg: KaggleEnv) -> None:
    for handle in (
        Handle(runtime="modal", remote_id=KERNEL_REF),
        Handle(runtime="kaggle", remote_id="../../etc"),
        Handle(runtime="kaggle", remote_id=f"{KERNEL_REF}/3"),
    ):
        with pytest.raises(InvalidInput, match="not a Kaggle kernel"):
            kg.runtime.status(handle)
    assert kg.fake.requests == []

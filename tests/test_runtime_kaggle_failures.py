"""Kaggle's known failures as errors that say what to do: rules not accepted, quota, a slug in
use, data too large, credentials, rate limits and outages (transient, retried by the job code
without a second upload or push); and the credential reaching nothing but the auth header."""

from __future__ import annotations

from pathlib import Path

import pytest
from canary import Canary
from fakes.kaggle import API_TOKEN, USERNAME
from runtime_kaggle_fixtures import (
    DATASET_REF,
    KERNEL_REF,
    KaggleEnv,
    kaggle_env,
    make_spec,
    start_kaggle,
)

from mltrainer.state.errors import (
    DatasetError,
    NotFound,
    PermissionDenied,
    RemoteServiceError,
    SecretError,
)
from mltrainer.tools.runtimes.base import Resources, TransientRemoteError
from mltrainer.tools.runtimes.kaggle import KaggleRuntime

pytest_plugins = ["runtime_kaggle_fixtures"]
T4 = Resources(gpu="T4", timeout_s=3600)


def test_competition_rules_not_accepted_say_where_to_accept_them(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path, input_dir=None, dataset_ref="kaggle-competition:titanic")
    with pytest.raises(PermissionDenied) as refused:
        kg.runtime.submit(spec)
    assert "has not accepted its rules" in str(refused.value)
    assert "https://www.kaggle.com/competitions/titanic/rules" in str(refused.value)
    assert kg.runtime.find(spec.job_id) is None
    kg.fake.rules_accepted.add("titanic")
    kg.runtime.submit(spec)
    assert kg.calls("SaveKernel")[-1]["competitionDataSources"] == ["titanic"]
    assert kg.calls("StartBlobUpload") == []


def test_a_dataset_kaggle_cannot_mount_is_not_found(kg: KaggleEnv, tmp_path: Path) -> None:
    spec = make_spec(tmp_path, input_dir=None, dataset_ref="kaggle:nobody/nothing")
    with pytest.raises(NotFound, match="would not mount the dataset nobody/nothing"):
        kg.runtime.submit(spec)


def test_an_exhausted_gpu_quota_is_refused_before_any_upload(kg: KaggleEnv, tmp_path: Path) -> None:
    kg.fake.gpu_hours = (30.0, 30.0)
    with pytest.raises(PermissionDenied) as refused:
        kg.runtime.submit(make_spec(tmp_path, resources=T4))
    assert "GPU quota of this account is used up (30 h)" in str(refused.value)
    assert "refreshes at 2026-12-05 00:00 UTC" in str(refused.value)
    assert "gpu=None" in str(refused.value)
    assert kg.calls("StartBlobUpload") == [] and kg.calls("SaveKernel") == []
    kg.runtime.submit(make_spec(tmp_path))  # a CPU run spends no GPU quota
    assert len(kg.calls("SaveKernel")) == 1


@pytest.mark.parametrize(
    ("error", "meaning"),
    [
        ("You have exceeded your weekly GPU quota", "GPU quota is used up"),
        ("Notebook slug is already in use", "slug is taken by another kernel"),
        ("Something else went wrong", "Fix what Kaggle names"),
    ],
)
def test_a_refused_push_becomes_an_error_that_says_what_to_do(
    kg: KaggleEnv, tmp_path: Path, error: str, meaning: str
) -> None:
    kg.fake.push_error = error
    with pytest.raises(RemoteServiceError if "else" in error else PermissionDenied) as refused:
        kg.runtime.submit(make_spec(tmp_path))
    assert error in str(refused.value) and meaning in str(refused.value)
    assert KERNEL_REF not in kg.fake.kernels


def test_data_over_the_private_quota_is_a_dataset_error_and_nothing_is_pushed(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    kg.fake.private_quota_bytes = 10
    with pytest.raises(DatasetError, match="private datasets quota is exceeded") as refused:
        kg.runtime.submit(make_spec(tmp_path))
    assert "delete old private datasets" in str(refused.value)
    assert kg.calls("SaveKernel") == []


def test_credentials_rejected_or_missing_name_the_secret(
    kg: KaggleEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAGGLE_KEY", "not-the-key-0123456789")
    with pytest.raises(SecretError, match=r"rejected the credentials.*HTTP 401.*secret://KAGGLE"):
        kg.runtime.submit(make_spec(tmp_path))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name)
    sent = len(kg.fake.requests)
    with pytest.raises(SecretError, match="secret://KAGGLE is not set"):
        kg.runtime.find("job_1")
    assert len(kg.fake.requests) == sent


def test_a_user_name_that_cannot_be_one_is_refused_before_anything_is_sent(
    kg: KaggleEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAGGLE_USERNAME", "someone/../else")
    with pytest.raises(SecretError, match="is not a Kaggle user name"):
        kg.runtime.submit(make_spec(tmp_path))
    assert kg.fake.requests == []


def test_an_api_token_alone_is_enough(
    kg: KaggleEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("KAGGLE_API_TOKEN", API_TOKEN)
    handle = kg.runtime.submit(make_spec(tmp_path))
    assert handle.remote_id == f"{USERNAME}/mltrainer-job-0123456789ab"
    assert kg.calls("IntrospectToken")


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_outages_are_transient_and_the_retry_succeeds(
    kg: KaggleEnv, tmp_path: Path, status: int
) -> None:
    kg.fake.fail_next = [status]
    with pytest.raises(TransientRemoteError) as busy:
        kg.runtime.submit(make_spec(tmp_path))
    assert busy.value.status == status and "the job retries this" in str(busy.value)
    handle = kg.runtime.submit(make_spec(tmp_path))  # what the job code's retry does
    assert handle.remote_id == KERNEL_REF and len(kg.calls("SaveKernel")) == 1


def test_a_retry_after_a_failed_push_does_not_upload_the_data_again(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    kg.fake.fail_method["SaveKernel"] = [503]
    with pytest.raises(TransientRemoteError):
        kg.runtime.submit(make_spec(tmp_path))
    uploads = len(kg.calls("StartBlobUpload"))
    assert uploads and DATASET_REF in kg.fake.datasets
    kg.runtime.submit(make_spec(tmp_path))
    assert len(kg.calls("StartBlobUpload")) == uploads
    assert kg.calls("CreateDatasetVersion") == []
    assert len(kg.fake.kernels[KERNEL_REF].pushes) == 1


def test_an_unreachable_kaggle_is_transient(kaggle_home: Path, tmp_path: Path) -> None:
    with start_kaggle() as fake:
        env = kaggle_env(fake, kaggle_home)
    # the fake is stopped: its port refuses connections
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAGGLE_USERNAME", USERNAME)
        patch.setenv("KAGGLE_KEY", fake.key)
        with pytest.raises(TransientRemoteError, match="Could not reach Kaggle"):
            env.runtime.submit(make_spec(tmp_path))


def test_the_kernel_waits_until_kaggle_has_processed_the_data(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    kg.fake.dataset_ready_after = 2
    kg.runtime.submit(make_spec(tmp_path))
    assert len(kg.calls("GetDatasetStatus")) == 3
    names = [r.path.rsplit("/", 1)[-1] for r in kg.fake.requests]
    assert names.index("SaveKernel") > max(
        i for i, n in enumerate(names) if n == "GetDatasetStatus"
    )


def test_data_still_processing_is_transient_and_not_uploaded_again(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    kg.fake.dataset_ready_after = 10**6
    impatient = KaggleRuntime(kg.settings, kg.vault, dataset_ready_timeout_s=0)
    with pytest.raises(TransientRemoteError, match="still processing the dataset"):
        impatient.submit(make_spec(tmp_path))
    uploads = len(kg.calls("StartBlobUpload"))
    kg.fake.datasets[DATASET_REF].pending_polls = 0
    impatient.submit(make_spec(tmp_path))
    assert len(kg.calls("StartBlobUpload")) == uploads
    assert len(kg.calls("SaveKernel")) == 1


def test_the_runtime_prints_nothing_on_stdout(
    kg: KaggleEnv, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # stdout is the MCP protocol channel of a stdio server; the kaggle client prints.
    handle = kg.runtime.submit(make_spec(tmp_path, resources=T4))
    kg.runtime.status(handle)
    kg.runtime.fetch(handle, tmp_path / "out")
    assert capfd.readouterr().out == ""


@pytest.mark.parametrize("kind", ["key", "token"])
def test_the_credential_reaches_nothing_but_the_auth_header(
    kaggle_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    canary = Canary.make("KAGGLE_KEY" if kind == "key" else "KAGGLE_API_TOKEN")
    if kind == "key":
        monkeypatch.setenv("KAGGLE_USERNAME", USERNAME)
    monkeypatch.setenv(canary.name, canary.value)
    fake_kaggle = start_kaggle(**{kind: canary.value})
    with fake_kaggle as fake:
        env = kaggle_env(fake, kaggle_home)
        fake.run_kernels = True
        handle = env.runtime.submit(make_spec(tmp_path, resources=T4))
        assert fake.kernels[KERNEL_REF].finished.wait(120)
        seen = [
            env.runtime.status(handle).model_dump_json(),
            env.runtime.logs(handle, None).model_dump_json(),
            env.runtime.cancel(handle).model_dump_json(),
        ]
        fetched = env.runtime.fetch(handle, kaggle_home / "fetched")
    assert fake.kernels[KERNEL_REF].status == "COMPLETE", seen
    for request in fake.requests:
        if kind == "token" and request.path.endswith("/IntrospectToken"):
            continue  # asks Kaggle's API whose token it is: the token is the question
        headers = {k: v for k, v in request.headers.items() if k != "authorization"}
        sent = f"{request.path} {request.query} {headers}".encode() + request.body
        assert not canary.find(sent), f"{request.method} {request.path}: {canary.find(sent)}"
    # It did travel, where it belongs: raw as a Bearer token, or inside Basic's base64.
    assert all(canary.find(r.headers["authorization"]) for r in fake.requests if "/v1/" in r.path)
    canary.assert_absent(kaggle_home, *seen, *(p.read_bytes() for p in fetched))
    assert len([r for r in fake.requests if r.path.endswith("/IntrospectToken")]) == (
        1 if kind == "token" else 0
    )

"""deploy() with the real huggingface_hub client against the fake Hub: one commit, no duplicate
commits, a newer model in one commit, a dry run without requests, and every refusal clear."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from deploy_fixtures import (
    CANARY,
    Trained,
    hub_settings,
    token_only_in_authorization,
    vault_with,
)
from fakes.hf import FakeHub
from fakes.hub_write import FakeToken, HubRepo

from mltrainer.state.errors import InvalidInput, PermissionDenied, RemoteServiceError, SecretError
from mltrainer.state.masking import Masker
from mltrainer.state.settings import Settings
from mltrainer.tools.deploy.deploy import deploy
from mltrainer.tools.deploy.models import DeployOptions, DeployResult

pytest_plugins = ["deploy_fixtures"]
REPO = "fakeuser/churn"
MODEL_FILES = {
    "model.skops",
    "meta.json",
    "predict.py",
    "requirements.txt",
    "metrics.json",
    "manifest.json",
    "README.md",
}


def run(
    trained: Trained,
    hub: FakeHub,
    model_id: str | None = None,
    *,
    token: str | None = CANARY,
    **options: object,
) -> DeployResult:
    settings = hub_settings(trained, hub)
    vault = vault_with(token, settings)
    return deploy(
        trained.folder(model_id or trained.classifier),
        DeployOptions(repo_id=str(options.pop("repo_id", REPO)), **options),  # type: ignore[arg-type]
        token_ref="secret://HF_TOKEN",
        settings=settings,
        vault=vault,
        masker=vault.masker(),
    )


def test_one_commit_holds_every_file(trained: Trained, hub: FakeHub) -> None:
    result = run(trained, hub)
    commits = hub.writer.commits(REPO)
    assert len(commits) == 2  # the repository's initial commit, then ours
    held = commits[-1].files
    plots = {p.name for p in trained.folder(trained.classifier).glob("*.png")}
    assert set(held) == MODEL_FILES | plots | {".gitattributes"}
    assert held["model.skops"].lfs and all(held[p].lfs for p in plots)
    assert not held["README.md"].lfs and not held["predict.py"].lfs
    assert result.committed and result.commit_sha == commits[-1].sha
    assert result.repo_url == f"{hub.url}/{REPO}"
    assert {f.path for f in result.files} == MODEL_FILES | plots
    assert held["README.md"].data.decode() == result.card_preview
    assert hub.writer.repo(REPO).private  # private unless asked otherwise
    assert commits[-1].message.startswith(f"Deploy {trained.classifier}")


def test_deploying_the_same_model_again_makes_no_commit(trained: Trained, hub: FakeHub) -> None:
    first = run(trained, hub)
    before = len(hub.requests)
    second = run(trained, hub)
    assert len(hub.writer.commits(REPO)) == 2
    assert not second.committed and second.commit_sha == first.commit_sha
    assert not any(f.changed for f in second.files)
    again = [f"{r.method} {r.path}" for r in hub.requests[before:]]
    assert not [r for r in again if r.startswith("PUT") or "/commit/" in r]  # nothing sent


def test_a_newer_model_updates_files_and_card_in_one_commit(trained: Trained, hub: FakeHub) -> None:
    run(trained, hub)
    newer = run(trained, hub, trained.regressor)
    commits = hub.writer.commits(REPO)
    assert len(commits) == 3 and newer.committed and newer.commit_sha == commits[-1].sha
    held = commits[-1].files
    assert "roc.png" not in held and "confusion_matrix.png" not in held  # stale plots removed
    assert "residuals.png" in held
    assert "tabular-regression" in held["README.md"].data.decode()
    meta = json.loads(held["meta.json"].data)
    assert meta["model_id"] == trained.regressor and meta["task"] == "regression"
    assert {f.path for f in newer.files if not f.changed} <= {"predict.py", "requirements.txt"}


def test_dry_run_sends_nothing_and_needs_no_token(trained: Trained, hub: FakeHub) -> None:
    result = run(trained, hub, token=None, dry_run=True, space=True)
    assert hub.requests == []
    assert result.dry_run and result.commit_sha is None and result.repo_url is None
    assert {f.path for f in result.files} >= MODEL_FILES
    assert {f.path for f in result.space_files} == {
        "app.py",
        "schema.json",
        "requirements.txt",
        "README.md",
    }
    assert result.card_preview.startswith("---\nlibrary_name: sklearn")


def test_predict_py_from_the_hub_predicts_like_the_server(
    trained: Trained, hub: FakeHub, tmp_path: Path
) -> None:
    from huggingface_hub import hf_hub_download

    run(trained, hub)
    fresh = tmp_path / "fresh"
    for name in ("predict.py", "meta.json", "model.skops"):
        hf_hub_download(REPO, name, local_dir=fresh, endpoint=hub.url, token=CANARY)
    rows = pd.read_csv(trained.data).drop(columns=["label"]).head(30)
    rows.to_csv(tmp_path / "in.csv", index=False)
    done = subprocess.run(
        [sys.executable, "predict.py", str(tmp_path / "in.csv"), str(tmp_path / "out.csv")],
        cwd=fresh,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    expected = trained.loaded(trained.classifier).predict_frame(rows)
    got = pd.read_csv(tmp_path / "out.csv")
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_a_read_only_token_is_refused_before_anything_is_created(
    trained: Trained, hub: FakeHub
) -> None:
    hub.writer.tokens[CANARY] = FakeToken("fakeuser", role="read")
    with pytest.raises(PermissionDenied, match="read-only") as caught:
        run(trained, hub)
    assert "write access" in str(caught.value)
    assert [r.path for r in hub.requests] == ["/api/whoami-v2"]


def test_a_namespace_the_token_cannot_write_is_refused(trained: Trained, hub: FakeHub) -> None:
    with pytest.raises(PermissionDenied, match="belongs to the account 'fakeuser'") as caught:
        run(trained, hub, repo_id="someone-else/churn")
    assert "fakeuser" in str(caught.value) and not hub.writer.repos


def test_a_fine_grained_token_without_write_permission_is_refused(
    trained: Trained, hub: FakeHub
) -> None:
    hub.writer.tokens[CANARY] = FakeToken(
        "fakeuser", role="fineGrained", scoped={"fakeuser": ["repo.content.read"]}
    )
    with pytest.raises(PermissionDenied, match=r"no 'repo\.write' permission on 'fakeuser'"):
        run(trained, hub)
    hub.writer.tokens[CANARY] = FakeToken(
        "fakeuser", role="fineGrained", scoped={"fakeuser": ["repo.content.read", "repo.write"]}
    )
    assert run(trained, hub).committed


def test_an_organisation_the_account_may_write_is_accepted(trained: Trained, hub: FakeHub) -> None:
    hub.writer.tokens[CANARY] = FakeToken("fakeuser", orgs={"acme": "write", "readers": "read"})
    assert run(trained, hub, repo_id="acme/churn").committed
    with pytest.raises(PermissionDenied, match="role 'read' in 'readers'"):
        run(trained, hub, repo_id="readers/churn")


@pytest.mark.parametrize(
    "repo_id",
    ["churn", "fakeuser/churn/extra", "fakeuser/bad--name", "fakeuser/.hidden", "a/" + "x" * 97],
)
def test_a_malformed_repo_id_is_refused_without_a_request(
    trained: Trained, hub: FakeHub, repo_id: str
) -> None:
    with pytest.raises(InvalidInput, match="repo_id"):
        run(trained, hub, repo_id=repo_id)
    assert hub.requests == []


def test_an_unknown_token_is_a_secret_error(trained: Trained, hub: FakeHub) -> None:
    with pytest.raises(SecretError, match="rejected the token"):
        run(trained, hub, token="hf_NotAKnownToken000000000000")


@pytest.mark.parametrize("path", ["/api/whoami-v2", "/api/repos/create", "/commit/"])
def test_a_server_error_of_the_hub_is_a_clear_error(
    trained: Trained, hub: FakeHub, path: str
) -> None:
    hub.writer.fail_paths[path] = 503
    with pytest.raises(RemoteServiceError, match=r"HTTP 503") as caught:
        run(trained, hub)
    assert "try again" in str(caught.value)
    assert CANARY not in str(caught.value)


def test_the_token_travels_only_in_authorization_headers(trained: Trained, hub: FakeHub) -> None:
    result = run(trained, hub, space=True)
    assert any("secret HF_TOKEN in the Space's settings" in note for note in result.notes)
    assert CANARY not in result.model_dump_json()
    assert token_only_in_authorization(hub, CANARY) > 0


def test_the_card_names_the_reference_a_cached_download_came_by(
    trained: Trained, hub: FakeHub, model_copy: Path, tmp_path: Path
) -> None:
    from mltrainer.state.models import DatasetRecord
    from mltrainer.state.store import Store

    settings = hub_settings(trained, hub).model_copy(update={"home": tmp_path / "state"})
    cached = settings.datasets_dir / "ds_0123456789ab" / "iris.csv"
    manifest = json.loads((model_copy / "manifest.json").read_text())
    manifest["data"]["path"] = manifest["request"]["dataset"] = str(cached)
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    store = Store(settings.db_path)
    store.upsert_dataset(
        DatasetRecord(
            id="ds_0123456789ab",
            ref="hf:scikit-learn/iris",
            source="hf",
            local_dir=str(cached.parent),
        )
    )
    result = deploy(
        model_copy,
        DeployOptions(repo_id=REPO, dry_run=True),
        token_ref="secret://HF_TOKEN",
        settings=settings,
        vault=vault_with(None, settings),
        masker=Masker(),
        store=store,
    )
    assert "datasets:\n- scikit-learn/iris\n" in result.card_preview
    assert (
        "hf:scikit-learn/iris" in result.card_preview and str(tmp_path) not in result.card_preview
    )


def test_a_commit_racing_another_one_is_refused_and_can_be_repeated(
    trained: Trained, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(trained, hub)
    preupload = hub.writer.preupload

    def someone_else_commits_meanwhile(repo: HubRepo, body: dict[str, Any]) -> Any:
        if len(repo.commits) == 2:
            repo.commit("a concurrent commit", dict(repo.head.files))
        return preupload(repo, body)

    monkeypatch.setattr(hub.writer, "preupload", someone_else_commits_meanwhile)
    with pytest.raises(RemoteServiceError, match="changed on the Hub") as caught:
        run(trained, hub, trained.regressor)
    assert "Deploy again" in str(caught.value)
    assert len(hub.writer.commits(REPO)) == 3  # the other commit only: nothing mixed in
    monkeypatch.setattr(hub.writer, "preupload", preupload)
    assert run(trained, hub, trained.regressor).committed


def test_a_composite_secret_is_not_taken_for_a_token(tmp_path: Path) -> None:
    from mltrainer.state.secrets import SecretVault
    from mltrainer.tools.deploy.hub import hub_token

    vault = SecretVault(
        tmp_path / "s.json",
        environ={"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k" * 32},
        settings=Settings(home=tmp_path),
    )
    with pytest.raises(SecretError):
        hub_token(vault, "secret://KAGGLE", "http://127.0.0.1:1")

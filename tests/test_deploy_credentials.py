"""Credentials checked live: valid (with the account and role), invalid, or unreachable, with
the real huggingface_hub and kaggle clients against the fake services. Never the value."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_fixtures import CANARY
from fakes.hf import FakeHub
from fakes.hub_write import FakeToken
from fakes.kaggle import API_TOKEN, KEY, USERNAME, FakeKaggle

from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.tools.deploy.credentials import (
    check_hf_token,
    check_kaggle,
    check_secret,
    check_value,
)

pytest_plugins = ["deploy_fixtures"]


@pytest.fixture
def kaggle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeKaggle]:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))  # no real ~/.kaggle
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    with FakeKaggle() as server:
        yield server


def settings_for(tmp_path: Path, **endpoints: str) -> Settings:
    return Settings(home=tmp_path / "home", **endpoints)


def test_a_write_token_is_valid_with_its_account_and_namespaces(
    hub: FakeHub, tmp_path: Path
) -> None:
    hub.writer.tokens[CANARY] = FakeToken("fakeuser", orgs={"acme": "admin", "viewers": "read"})
    check = check_hf_token(CANARY, settings_for(tmp_path, hf_endpoint=hub.url))
    assert check.status == "valid" and check.account == "fakeuser" and check.role == "write"
    assert check.can_write == ["fakeuser", "acme"]
    assert CANARY not in check.model_dump_json()


def test_a_read_token_is_valid_but_says_it_cannot_deploy(hub: FakeHub, tmp_path: Path) -> None:
    hub.writer.tokens[CANARY] = FakeToken("fakeuser", role="read")
    check = check_hf_token(CANARY, settings_for(tmp_path, hf_endpoint=hub.url))
    assert check.status == "valid" and check.role == "read" and check.can_write == []
    assert "read-only" in check.message


def test_an_unknown_token_is_invalid(hub: FakeHub, tmp_path: Path) -> None:
    check = check_hf_token(
        "hf_NotKnown0000000000000000", settings_for(tmp_path, hf_endpoint=hub.url)
    )
    assert check.status == "invalid" and check.account is None
    assert "hf_NotKnown" not in check.model_dump_json()


def test_a_hub_that_fails_or_is_gone_is_unreachable(hub: FakeHub, tmp_path: Path) -> None:
    hub.writer.fail_paths["/api/whoami-v2"] = 502
    check = check_hf_token(CANARY, settings_for(tmp_path, hf_endpoint=hub.url))
    assert check.status == "unreachable" and "HTTP 502" in check.message
    closed = check_hf_token(CANARY, settings_for(tmp_path, hf_endpoint="http://127.0.0.1:9"))
    assert closed.status == "unreachable"


def test_check_secret_resolves_the_vault_for_known_names(hub: FakeHub, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, hf_endpoint=hub.url)
    vault = SecretVault(tmp_path / "secrets.json", environ={"HF_TOKEN": CANARY}, settings=settings)
    check = check_secret("HF_TOKEN", vault, settings)
    assert check is not None and check.status == "valid"
    assert check_secret("SOMETHING_ELSE", vault, settings) is None
    assert check_value("HF_TOKEN", "hf_typo000000000000000000", vault, settings).status == "invalid"  # type: ignore[union-attr]


def test_kaggle_key_and_token_are_checked_with_the_kaggle_client(
    kaggle: FakeKaggle, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, kaggle_api_endpoint=kaggle.url)
    by_key = check_kaggle({"KAGGLE_USERNAME": USERNAME, "KAGGLE_KEY": KEY}, settings)
    assert by_key.status == "valid" and by_key.account == USERNAME and by_key.role == "api_key"
    by_token = check_kaggle({"KAGGLE_API_TOKEN": API_TOKEN}, settings)
    assert by_token.status == "valid" and by_token.account == USERNAME
    assert by_token.role == "access_token"
    assert any(r.path.endswith("/IntrospectToken") for r in kaggle.requests)


def test_wrong_kaggle_credentials_are_invalid(kaggle: FakeKaggle, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, kaggle_api_endpoint=kaggle.url)
    wrong = check_kaggle({"KAGGLE_USERNAME": USERNAME, "KAGGLE_KEY": "0" * 32}, settings)
    assert wrong.status == "invalid" and "0" * 32 not in wrong.model_dump_json()
    assert check_kaggle({"KAGGLE_API_TOKEN": "KGAT_wrong_0000000000"}, settings).status == "invalid"
    vault = SecretVault(
        tmp_path / "secrets.json", environ={"KAGGLE_USERNAME": USERNAME}, settings=settings
    )
    typed = check_value("KAGGLE_KEY", KEY, vault, settings)
    assert typed is not None and typed.status == "valid"


def test_kaggle_down_is_unreachable(kaggle: FakeKaggle, tmp_path: Path) -> None:
    kaggle.fail_next = [503] * 10
    settings = settings_for(tmp_path, kaggle_api_endpoint=kaggle.url)
    check = check_kaggle({"KAGGLE_USERNAME": USERNAME, "KAGGLE_KEY": KEY}, settings)
    assert check.status == "unreachable"

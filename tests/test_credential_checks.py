"""Credentials checked live: list_secrets(validate=True) through MCP, and the secret entry page
refusing a value its service does not accept (the link stays usable)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import connect, payload
from fakes.hf import FakeHub
from fakes.hub_write import FakeToken
from test_secret_entry import post

from mltrainer.server.context import value_check
from mltrainer.server.secret_entry import SecretEntryServer
from mltrainer.state.masking import Masker
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings

WRITE_TOKEN = "hf_livecheck0write0token0abcdef"
READ_TOKEN = "hf_livecheck0read0token00abcdef"
WRONG_TOKEN = "hf_livecheck0wrong0token0abcdef"


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub() as server:
        server.writer.tokens[WRITE_TOKEN] = FakeToken("fakeuser")
        server.writer.tokens[READ_TOKEN] = FakeToken("fakeuser", role="read")
        yield server


@pytest.mark.anyio
async def test_list_secrets_validates_each_set_credential_against_its_service(
    home: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    settings = Settings(home=home, hf_endpoint=hub.url)
    async with connect("memory", settings) as client:
        plain = payload(await client.call_tool("list_secrets", {}))
        assert plain["checks"] == {}  # no request unless asked
        assert not [r for r in hub.requests if "whoami" in r.path]
        checked = payload(await client.call_tool("list_secrets", {"validate": True}))
        monkeypatch.setenv("HF_TOKEN", WRONG_TOKEN)
        wrong = payload(await client.call_tool("list_secrets", {"validate": True}))
    assert checked["checks"]["HF_TOKEN"]["status"] == "valid"
    assert checked["checks"]["HF_TOKEN"]["account"] == "fakeuser"
    assert wrong["checks"]["HF_TOKEN"]["status"] == "invalid"
    assert "KAGGLE" not in checked["checks"]  # not set: nothing to check
    for token in (WRITE_TOKEN, WRONG_TOKEN):
        assert token not in str(checked) + str(wrong)


def test_the_entry_page_refuses_a_token_the_hub_does_not_accept(
    settings: Settings, hub: FakeHub
) -> None:
    settings = Settings(home=settings.home, hf_endpoint=hub.url)
    vault = SecretVault.for_settings(settings, {})
    entry = SecretEntryServer(vault, Masker(), check=value_check(vault, settings))
    try:
        url, _ = entry.request("HF_TOKEN")
        origin = "http://" + urllib.parse.urlsplit(url).netloc
        status, page = post(url, {"value": WRONG_TOKEN}, Origin=origin)
        assert status == 400 and "does not accept this token" in page
        assert WRONG_TOKEN not in page
        assert vault.info("HF_TOKEN").source == "unset"  # nothing stored
        status, page = post(url, {"value": READ_TOKEN}, Origin=origin)  # the same link
        assert status == 200 and "read-only" in page
        assert vault.credential_value("secret://HF_TOKEN", destination=hub.url) == READ_TOKEN
    finally:
        entry.close()


def test_a_stalled_hub_is_unreachable_not_a_hung_call(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: huggingface_hub's shared client waits forever by default."""
    from fakes.data import TrickleServer
    from huggingface_hub import close_session

    from mltrainer.tools import hf
    from mltrainer.tools.deploy.credentials import check_hf_token

    monkeypatch.setattr(hf, "READ_TIMEOUT_S", 1.0)
    monkeypatch.setattr(hf, "_timeouts_set", False)
    close_session()  # the next request builds a client with the short timeout
    try:
        with TrickleServer(interval=5.0) as stalled:  # headers sent, then a byte every 5 s
            check = check_hf_token(
                WRITE_TOKEN, Settings(home=settings.home, hf_endpoint=stalled.url)
            )
        assert check.status == "unreachable", check
    finally:
        monkeypatch.setattr(hf, "_timeouts_set", False)
        close_session()

"""The one-time secret entry page: only its own address, only its own form, never framed; a
refused request leaves the link usable for the person; one server however many first calls."""

from __future__ import annotations

import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import connect, payload

from mltrainer.server.secret_entry import SecretEntryServer
from mltrainer.state.masking import Masker
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings

VALUE = "typed-by-the-person-0042"
ATTACKER_VALUE = "attacker-chosen-value-0666"


@pytest.fixture
def entry(settings: Settings) -> Iterator[SecretEntryServer]:
    server = SecretEntryServer(SecretVault.for_settings(settings, {}), Masker())
    yield server
    server.close()


def post(url: str, fields: dict[str, str], **headers: str) -> tuple[int, str]:
    body = urllib.parse.urlencode(fields).encode()
    return send(urllib.request.Request(url, data=body, headers=headers))


def send(request: urllib.request.Request) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def stored(settings: Settings, name: str) -> str:
    vault = SecretVault.for_settings(settings, {})
    return vault.credential_value(f"secret://{name}", destination="https://api.example.com")


def test_a_foreign_origin_is_refused_without_using_up_the_link(
    entry: SecretEntryServer, settings: Settings
) -> None:
    """Regression: a cross-site POST stored the attacker's value, and the person's own entry
    was then told the link had expired."""
    url, _ = entry.request("MY_API_KEY", ["api.example.com"])
    port = int(urllib.parse.urlsplit(url).port or 0)
    fields = {"value": ATTACKER_VALUE, "hosts": "api.example.com"}
    for headers in (
        {"Origin": f"http://127.0.0.1:{port + 1}"},  # a page on another local port
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # a sandboxed frame or a privacy redirect: unverifiable
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": f"http://127.0.0.1:{port}"},
    ):
        status, page = post(url, fields, **headers)
        assert status == 403, headers
        assert "another site" in page
    assert not settings.secrets_path.exists()
    own = {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}
    status, page = post(url, {"value": VALUE, "hosts": "api.example.com"}, **own)
    assert status == 200 and "Stored MY_API_KEY" in page
    assert stored(settings, "MY_API_KEY") == VALUE


def test_only_its_own_host_is_answered(entry: SecretEntryServer, settings: Settings) -> None:
    """A domain re-bound to 127.0.0.1 (DNS rebinding) sends its own Host: refused."""
    url, _ = entry.request("MY_API_KEY", ["api.example.com"])
    for host in ("evil.example", "localhost:" + str(urllib.parse.urlsplit(url).port)):
        status, _ = send(urllib.request.Request(url, headers={"Host": host}))
        assert status == 421
        status, _ = post(url, {"value": ATTACKER_VALUE, "hosts": "evil.example"}, Host=host)
        assert status == 403
    assert post(url, {"value": VALUE, "hosts": "api.example.com"})[0] == 200
    assert stored(settings, "MY_API_KEY") == VALUE


def test_the_page_cannot_be_framed(entry: SecretEntryServer) -> None:
    url, _ = entry.request("MY_API_KEY", ["api.example.com"])
    with urllib.request.urlopen(url, timeout=30) as page:
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["Referrer-Policy"] == "same-origin"
        assert page.headers["Cache-Control"] == "no-store"
    for gone in (url + "x", url.rsplit("/", 1)[0], url.replace("/secret/", "/other/")):
        assert send(urllib.request.Request(gone))[0] == 404


def test_a_value_that_cannot_be_stored_is_shown_back_with_the_reason(
    entry: SecretEntryServer, settings: Settings
) -> None:
    url, _ = entry.request("MY_API_KEY", ["api.example.com"])
    status, page = post(url, {"value": "false", "hosts": "api.example.com"})
    assert status == 400 and "shorter than 8 characters" in page and 'type="password"' in page
    status, page = post(url, {"value": VALUE, "hosts": ""})
    assert status == 400 and "Name the host" in page
    assert post(url, {"value": VALUE, "hosts": "api.example.com"})[0] == 200
    assert post(url, {"value": VALUE, "hosts": "api.example.com"})[0] == 404  # used once
    assert stored(settings, "MY_API_KEY") == VALUE


def test_fixed_hosts_are_shown_not_editable(entry: SecretEntryServer, settings: Settings) -> None:
    url, _ = entry.request("HF_TOKEN")
    with urllib.request.urlopen(url, timeout=30) as page:
        form = page.read().decode()
    assert "huggingface.co" in form and 'name="hosts"' not in form
    status, _ = post(url, {"value": "hf_personPerson0123456789", "hosts": "evil.example"})
    assert status == 200  # posted hosts are ignored for a built-in credential
    vault = SecretVault.for_settings(settings, {})
    assert vault.info("HF_TOKEN").hosts == ["huggingface.co"]


def test_concurrent_first_requests_start_one_server(entry: SecretEntryServer) -> None:
    """Regression: starting the page was check-then-create without a lock, so two first
    requests at once could start two servers (one of them never closed)."""
    barrier = threading.Barrier(8)
    urls: list[str] = []

    def first_request() -> None:
        barrier.wait()
        urls.append(entry.request("MY_API_KEY", ["api.example.com"])[0])

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave the threads as finely as the interpreter allows
    try:
        threads = [threading.Thread(target=first_request) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        sys.setswitchinterval(switch)
    ports = {urllib.parse.urlsplit(url).port for url in urls}
    assert len(urls) == 8 and len(ports) == 1


@pytest.mark.anyio
async def test_attacker_page_then_the_persons_own_entry_through_mcp(
    settings: Settings, tmp_path: Path
) -> None:
    """set_secret over MCP: a page on another local port posts first and is refused; the
    person's entry then works and the tool reports it stored."""
    from mcp.types import ElicitResult

    answers: list[int] = []

    async def on_elicit(context, params):
        port = urllib.parse.urlsplit(params.url).port
        answers.append(post(params.url, {"value": ATTACKER_VALUE}, Origin="http://127.0.0.1:1")[0])
        own = {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}
        answers.append(post(params.url, {"value": VALUE, "hosts": "api.example.com"}, **own)[0])
        return ElicitResult(action="accept")

    async with connect("memory", settings, elicitation_callback=on_elicit) as client:
        result = await client.call_tool(
            "set_secret", {"name": "MY_API_KEY", "hosts": ["api.example.com"]}
        )
        outcome = payload(result)
    assert answers == [403, 200]
    assert outcome["status"] == "set" and ATTACKER_VALUE not in result.model_dump_json()
    assert stored(settings, "MY_API_KEY") == VALUE

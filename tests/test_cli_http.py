"""The human CLI and the HTTP transport: demo, loopback-only binding, the bearer token that
every HTTP request needs, DNS-rebinding protection on every loopback address, secrets."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import (
    authorized_http,
    connect,
    free_port,
    http_token,
    payload,
    serve_http,
    server_env,
)

from mltrainer.state.errors import MLTrainerError
from mltrainer.state.settings import Settings

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command


def run_cli(
    *args: str, home: Path, timeout: float = 120, input: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-m", "mltrainer.server.cli", *args],
        env={**os.environ, **server_env(home, **env)},
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


def test_non_loopback_bind_is_refused_without_allow_remote(home: Path) -> None:
    for extra in ([], ["--token", "t0ken-0123456789abcdef"]):
        done = run_cli(
            "serve", "--http", "--host", "0.0.0.0", "--port", str(free_port()), *extra, home=home
        )
        assert done.returncode == 2, extra
        assert "--allow-remote" in done.stderr and "token" in done.stderr


def test_a_short_token_is_refused(home: Path) -> None:
    done = run_cli("serve", "--http", "--port", str(free_port()), "--token", "s3cret", home=home)
    assert done.returncode == 2 and "shorter than 16 characters" in done.stderr


def test_the_generated_token_is_private_and_shown_once(settings: Settings, capsys) -> None:
    from mltrainer.server.http import resolve_token

    token = resolve_token(settings, None)
    first = capsys.readouterr().err
    assert token in first and str(settings.http_token_path) in first
    assert stat.S_IMODE(settings.http_token_path.stat().st_mode) == 0o600
    assert resolve_token(settings, None) == token
    again = capsys.readouterr().err
    assert token not in again and str(settings.http_token_path) in again
    assert resolve_token(settings, "given-token-0123456789") == "given-token-0123456789"
    os.chmod(settings.http_token_path, 0o644)
    with pytest.raises(MLTrainerError, match="readable by other users"):
        resolve_token(settings, None)


def leaves(group: BaseException) -> list[BaseException]:
    if isinstance(group, BaseExceptionGroup):
        return [leaf for inner in group.exceptions for leaf in leaves(inner)]
    return [group]


def raw_post(url: str, **headers: str) -> int:
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'
    base = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    request = urllib.request.Request(url, data=body, headers={**base, **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2"])
async def test_http_needs_the_token_and_its_own_host_and_origin(
    settings: Settings, tmp_path: Path, host: str
) -> None:
    """Regression: loopback HTTP answered without a token, and on 127.0.0.2 the SDK's
    DNS-rebinding protection was off (Host evil.example answered 200)."""
    with serve_http(settings.home, tmp_path, host) as (url, log):
        token = http_token(settings)
        assert token in log.read_text()  # shown to the person at first start
        auth = f"Bearer {token}"
        port = url.split(":")[2].split("/")[0]
        assert raw_post(url) == 401
        assert raw_post(url, Authorization="Bearer wrong-token-0123456789") == 401
        assert raw_post(url, Authorization=auth, Host="evil.example") == 421
        assert raw_post(url, Authorization=auth, Host=f"evil.example:{port}") == 421
        assert raw_post(url, Authorization=auth, Origin="http://evil.example") == 403
        other = f"http://{host}:{int(port) + 1}"  # a page on another local port
        assert raw_post(url, Authorization=auth, Origin=other) == 403
        for client_token, headers in (
            (None, {}),
            (token, {"Host": "evil.example"}),
            (token, {"Origin": "http://evil.example"}),
        ):
            with pytest.raises(BaseExceptionGroup) as refused:
                async with (
                    authorized_http(url, client_token, **headers) as transport,
                    connect("transport", settings, transport) as client,
                ):
                    await client.call_tool("list_jobs", {})
            assert [str(e) for e in leaves(refused.value)] == ["Server returned an error response"]
        async with connect("http", settings, url) as client:  # the server kept serving
            assert payload(await client.call_tool("list_jobs", {}))["count"] == 0


@pytest.mark.anyio
async def test_a_configured_token_is_used_and_none_is_generated(
    settings: Settings, tmp_path: Path
) -> None:
    token = "configured-token-0123456789abcdef"
    with serve_http(settings.home, tmp_path, MLTRAINER_HTTP_TOKEN=token) as (url, log):
        assert raw_post(url) == 401
        async with (
            authorized_http(url, token) as transport,
            connect("transport", settings, transport) as client,
        ):
            assert payload(await client.call_tool("list_jobs", {}))["count"] == 0
    assert not settings.http_token_path.exists()
    assert token not in log.read_text()


def test_secrets_cli_sets_lists_and_deletes_without_showing_values(home: Path) -> None:
    value = "cli-secret-value-0123"
    done = run_cli(
        "secrets",
        "set",
        "MY_API_KEY",
        "--host",
        "api.example.com",
        "--stdin",
        home=home,
        input=value + "\n",
    )
    assert done.returncode == 0, done.stderr
    assert "Stored MY_API_KEY" in done.stdout and "api.example.com" in done.stdout
    listed = run_cli("secrets", "list", home=home)
    assert listed.returncode == 0 and "secret://HF_TOKEN" in listed.stdout
    line = next(row for row in listed.stdout.splitlines() if "secret://MY_API_KEY" in row)
    assert "registered" in line and "api.example.com" in line and value not in listed.stdout
    short = run_cli(
        "secrets", "set", "OTHER_KEY", "--host", "a.example", "--stdin", home=home, input="false\n"
    )
    assert short.returncode == 2 and "shorter than 8 characters" in short.stderr
    nohost = run_cli("secrets", "set", "OTHER_KEY", "--stdin", home=home, input=value + "\n")
    assert nohost.returncode == 2 and "Name the host" in nohost.stderr
    override = run_cli(
        "secrets",
        "set",
        "HF_TOKEN",
        "--stdin",
        home=home,
        input="hf_clivalue0123456789abcdefg\n",
        HF_TOKEN="hf_envvalue0123456789abcdefg",
    )
    assert override.returncode == 0 and "takes precedence" in override.stderr
    assert run_cli("secrets", "delete", "MY_API_KEY", home=home).stdout.startswith("Deleted")
    bad = run_cli("secrets", "set", home=home)
    assert bad.returncode != 0 and "NAME" in bad.stderr


def test_demo_trains_and_predicts_offline(home: Path) -> None:
    done = run_cli("demo", "--time-budget", "5", home=home, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validation roc_auc" in done.stdout and "held-out test rows" in done.stdout
    assert "Predictions for 10 new rows" in done.stdout

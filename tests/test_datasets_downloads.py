"""URL downloads: connections pinned to checked addresses, redirects re-checked, TLS still
verified, and slow sources that cannot starve the server (issue #9, attacks 7 and 10).

Each attack runs through a real MCP client (memory transport) against local servers; names
such as ``secure.test`` resolve through the guard's resolver, patched here, since nothing
else on the machine can resolve them (a connection that reaches the server proves it used
the guard's answer).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from canary import Canary
from conftest import connect, error_text, payload
from fakes.base import Response
from fakes.data import TRAIN_CSV, DataContext, FileServer, TrickleServer

from mltrainer.state import guard
from mltrainer.state.errors import RemoteServiceError
from mltrainer.state.settings import Settings
from mltrainer.tools.datasets.fetch import fetch

pytest_plugins = ["datasets_fixtures"]


@pytest.fixture
def planted(ds_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> list[Canary]:
    """A token in the server's environment and a key in its secrets file."""
    token, key = Canary.make("HF_TOKEN", prefix="hf_"), Canary.make("STORED_KEY")
    monkeypatch.setenv(token.name, token.value)
    key.store(ds_settings.home)
    return [token, key]


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """Host name → the answers the resolver gives, one list per lookup (the last repeats)."""
    answers: dict[str, list[list[str]]] = {}
    real = guard.resolve

    def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            return real(host, port)
        queue = answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    monkeypatch.setattr(guard, "resolve", resolve)
    return answers


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A throwaway CA trusted by the server's TLS (SSL_CERT_FILE), and a certificate for
    secure.test."""
    import trustme

    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    return ca.issue_cert("secure.test")


@pytest.fixture
def secure(tls: Any) -> Iterator[FileServer]:
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.configure_cert(context)
    with FileServer(tls=context) as server:
        yield server


@pytest.fixture
def plain() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server


@pytest.mark.anyio
async def test_a_connection_goes_to_the_address_that_was_checked(
    ds_settings: Settings, plain: FileServer, names: dict[str, list[list[str]]]
) -> None:
    plain.files["/a.csv"] = Response(200, TRAIN_CSV)
    # The first lookup says loopback (allowed), any later one a private address: the file
    # arrives only if the connection used the first answer, with no second lookup.
    names["rebind.test"] = [["127.0.0.1"], ["10.9.9.9"]]
    async with connect("memory", ds_settings) as client:
        got = payload(
            await client.call_tool(
                "download_dataset", {"ref": f"http://rebind.test:{plain.port}/a.csv"}
            )
        )
    assert got["files"][0]["bytes"] == len(TRAIN_CSV)
    assert names["rebind.test"] == [["10.9.9.9"]]  # exactly one lookup was made
    assert [r.path for r in plain.requests] == ["/a.csv"]


@pytest.mark.anyio
async def test_https_is_verified_and_its_redirects_are_checked_again(
    ds_settings: Settings,
    secure: FileServer,
    plain: FileServer,
    names: dict[str, list[list[str]]],
    planted: list[Canary],
) -> None:
    """Attack 7: an https URL that redirects to a plain-http service on this machine."""
    canary = Canary.make("ADMIN_KEY")
    plain.files["/admin"] = Response(200, canary.value.encode())
    secure.files["/data.csv"] = Response(200, TRAIN_CSV)
    secure.files["/moved"] = Response(302, headers={"Location": f"{plain.url}/admin"})
    names["secure.test"] = names["impostor.test"] = [["127.0.0.1"]]
    ds_settings.allow_private_urls = True  # https to this machine: the person allowed it
    ds_settings.allow_loopback_http = False
    base = f"https://secure.test:{secure.port}"
    async with connect("memory", ds_settings) as client:
        call = lambda ref: client.call_tool("download_dataset", {"ref": ref})  # noqa: E731
        got = payload(await call(f"{base}/data.csv"))
        assert got["files"][0]["path"] == "data.csv"
        redirected = error_text(await call(f"{base}/moved"))
        assert "only https://" in redirected and "127.0.0.1" in redirected
        # The certificate is checked against the name, not the pinned address.
        impostor = error_text(await call(f"https://impostor.test:{secure.port}/data.csv"))
        assert "CERTIFICATE_VERIFY_FAILED" in impostor or "certificate" in impostor.lower()
        ds_settings.allow_private_urls = False
        private = error_text(await call(f"{base}/data.csv?again=1"))
        assert "a loopback address" in private and "MLTRAINER_ALLOW_PRIVATE_URLS" in private
        still = payload(await client.call_tool("list_jobs", {}))
    assert still["count"] == 0
    assert plain.requests == []  # the service behind the redirect never saw a request
    for secret in [canary, *planted]:
        secret.assert_absent(ds_settings.home, redirected, impostor, private)


@pytest.mark.anyio
async def test_metadata_and_private_addresses_are_refused_before_connecting(
    ds_settings: Settings, names: dict[str, list[list[str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    names["metadata.test"] = [["169.254.169.254"]]
    names["intranet.test"] = [["10.0.0.7"]]
    connects: list[object] = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connects.append(a))
    async with connect("memory", ds_settings) as client:
        for host, kind in [("metadata.test", "cloud metadata"), ("intranet.test", "private")]:
            text = error_text(
                await client.call_tool("download_dataset", {"ref": f"https://{host}/x.csv"})
            )
            assert kind in text and "Refusing" in text
    assert connects == []


@pytest.mark.anyio
async def test_a_download_ends_at_its_deadline_and_leaves_nothing(
    ds_settings: Settings, tmp_path: Path, planted: list[Canary]
) -> None:
    """Attack 10, one source: bytes trickle in for ever; the download stops at its deadline."""
    ds_settings.download_timeout_s = 1.5
    (tmp_path / "small.csv").write_text("a,b\n1,2\n3,4\n")
    with TrickleServer(size=10_000, interval=0.1) as slow:
        async with connect("memory", ds_settings) as client:
            text = error_text(
                await client.call_tool("download_dataset", {"ref": f"{slow.url}/slow.csv"})
            )
            assert "deadline of 1.5 s" in text and "MLTRAINER_DOWNLOAD_TIMEOUT_S" in text
            profiled = await client.call_tool("profile_dataset", {"dataset": "small.csv"})
            assert payload(profiled)["n_rows"] == 2
    leftovers = [p.name for p in ds_settings.datasets_dir.iterdir()]
    assert leftovers == []  # no partial download, no dataset recorded
    for secret in planted:
        secret.assert_absent(ds_settings.home, text, repr(profiled.structured_content))


@pytest.mark.parametrize("ref", ["kaggle:uciml/iris", "hf:scikit-learn/iris"])
def test_kaggle_and_hub_downloads_stop_at_their_deadline_too(
    ref: str, ds: DataContext, kaggle_creds: None, fake_hub: Any
) -> None:
    """Their clients are the libraries'; the deadline is checked as each chunk arrives."""
    ds.settings.download_timeout_s = 0.001  # over before the first chunk is reported
    with pytest.raises(RemoteServiceError, match=r"deadline of 0\.001 s"):
        fetch(ref, settings=ds.settings, store=ds.store, vault=ds.vault)
    assert list(ds.settings.datasets_dir.iterdir()) == []


@pytest.mark.anyio
async def test_a_source_that_never_ends_its_headers_is_cut_off_at_the_deadline(
    ds_settings: Settings,
) -> None:
    """No body byte ever arrives, so only the deadline's watchdog (which shuts the connection
    down) can end the call: every read returns a byte in time, so no read timeout fires."""
    ds_settings.download_timeout_s = 1.5
    with TrickleServer(size=600, interval=0.1, slow_headers=True) as slow:
        async with connect("memory", ds_settings) as client:
            text = error_text(
                await client.call_tool("download_dataset", {"ref": f"{slow.url}/slow.csv"})
            )
        assert "deadline of 1.5 s" in text
        assert await anyio.to_thread.run_sync(slow.gone.wait, 60)  # the client hung up
        assert not slow.release.is_set()


@pytest.mark.anyio
async def test_many_slow_downloads_cannot_starve_the_other_tools(
    ds_settings: Settings, tmp_path: Path, planted: list[Canary]
) -> None:
    """Attack 10: more parallel downloads from a trickling URL than the server has worker
    threads. At most MLTRAINER_MAX_DOWNLOADS run; the rest are refused at once; other tools
    keep answering while the slow ones run; those then finish normally."""
    (tmp_path / "small.csv").write_text("a,b\n1,2\n3,4\n")
    limit, calls = ds_settings.max_downloads, 44  # default limit; anyio has 40 threads
    results: dict[int, Any] = {}
    with TrickleServer(size=2_000, interval=0.2) as slow:
        async with connect("memory", ds_settings) as client:

            async def download(i: int) -> None:
                ref = f"{slow.url}/slow.csv?n={i}"
                results[i] = await client.call_tool("download_dataset", {"ref": ref})

            async with anyio.create_task_group() as group:
                for i in range(calls):
                    group.start_soon(download, i)
                with anyio.fail_after(120):  # generous: a guard against hanging, not a timing
                    await anyio.to_thread.run_sync(slow.wait_connected, limit)
                    while len(results) < calls - limit:
                        await anyio.sleep(0.05)
                    running = next(i for i in range(calls) if i not in results)
                    same = await client.call_tool(
                        "download_dataset", {"ref": f"{slow.url}/slow.csv?n={running}"}
                    )
                    profiled = await client.call_tool("profile_dataset", {"dataset": "small.csv"})
                    jobs = await client.call_tool("list_jobs", {})
                assert len(results) == calls - limit  # the slow ones are still running
                slow.release.set()
    refused = [error_text(r) for r in results.values() if r.is_error]
    assert len(refused) == calls - limit
    assert all("MLTRAINER_MAX_DOWNLOADS" in text for text in refused)
    assert "being downloaded by another call" in error_text(same)
    assert payload(profiled)["n_rows"] == 2 and payload(jobs)["count"] == 0
    finished = [payload(r) for r in results.values() if not r.is_error]
    assert len(finished) == limit and all(f["total_bytes"] == 2_000 for f in finished)
    assert slow.connected == limit
    for secret in planted:
        secret.assert_absent(ds_settings.home, *refused, repr(finished), error_text(same))

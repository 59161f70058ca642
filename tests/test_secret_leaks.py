"""An assistant driving the tools as an attacker would, over stdio and HTTP, with canaries in
the server's environment and in secrets.json: every attempt fails with a clear error, no
canary form (raw, reversed, base64, hex, split over lines) reaches a result, a log line or a
database row, JSON text stays valid, and the server keeps serving.

The canary scanner here is small and local on purpose (a shared one lives elsewhere).
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import connect, error_text, payload, serve_http, server_env
from datasets_fixtures import dataset_env, fake_hub  # noqa: F401 - fixtures
from fakes.data import IRIS_CSV
from fakes.hf import FakeHub
from fakes.kaggle import FakeDataset, FakeKaggle

from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command

ENV_CANARY = "hf_ENVcanary0123456789abcdefQRS"  # HF_TOKEN in the environment
UNDECLARED = "sk-UNDECLAREDcanary-5550123abc"  # OPENAI_API_KEY: an environment variable only
DB_PASSWORD = "DBcanary-pw-8675309-xyz"
FILE_CANARY = "FILEcanary-0123456789-abcdefg"  # FILE_KEY in secrets.json, bound elsewhere
CANARIES = (ENV_CANARY, UNDECLARED, DB_PASSWORD, FILE_CANARY)


def canary_forms(value: str) -> set[str]:
    """The forms in which a leaked canary would show: raw, reversed, hex, URL-encoded, and the
    part of its base64 (either alphabet) that does not depend on what surrounds it."""
    raw = value.encode()
    forms = {value, value[::-1], raw.hex(), raw.hex().upper(), urllib.parse.quote(value)}
    for prefix in (b"", b"x", b"xy"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            forms.add(encode(prefix + raw).decode()[4:-4])
    return forms


def leaks(text: str, canaries: tuple[str, ...] = CANARIES) -> list[str]:
    """Every canary form in ``text``, also once white space (a split over lines) is gone."""
    joined = "".join(text.replace("\\n", "").split())
    return [
        form
        for canary in canaries
        for form in canary_forms(canary)
        if form in text or form in joined
    ]


@asynccontextmanager
async def attacked_server(
    transport: str, settings: Settings, tmp_path: Path, hub: FakeHub, kaggle: FakeKaggle
) -> AsyncIterator[tuple[Any, Path]]:
    """A server with the canaries, over stdio or HTTP; yields the client and its stderr."""
    from mcp import StdioServerParameters
    from mcp.client.stdio import stdio_client

    env = {
        "HF_TOKEN": ENV_CANARY,
        "OPENAI_API_KEY": UNDECLARED,
        "DATABASE_URL": f"postgresql://app:{DB_PASSWORD}@db.example.com/app",
        "FEATURE_TOKEN": "false",  # too common to be a secret: must not blank every `false`
        "HF_ENDPOINT": hub.url,
        "MLTRAINER_KAGGLE_API_ENDPOINT": kaggle.url,
        "KAGGLE_USERNAME": "fakeuser",
        "KAGGLE_KEY": "fake-kaggle-key-0123456789",
    }
    SecretVault.for_settings(settings, {}).set("FILE_KEY", FILE_CANARY, ["api.example.com"])
    if transport == "http":
        with serve_http(settings.home, tmp_path, **env) as (url, log):
            async with connect("http", settings, url) as client:
                yield client, log
        return
    log = tmp_path / "stdio-server.log"
    params = StdioServerParameters(
        command=__import__("sys").executable,
        args=["-P", "-m", "mltrainer.server.cli", "serve"],
        env=server_env(settings.home, **env),
        cwd=str(tmp_path),
    )
    with open(log, "w") as errlog:
        async with connect("transport", settings, stdio_client(params, errlog=errlog)) as client:
            yield client, log


def labelled_csv(path: Path, label: str) -> Path:
    """A small table whose class label is the canary, and a second copy without labels."""
    rows = [f"{i % 7},{(i * 3) % 5},{label if i % 2 else 'other'}" for i in range(80)]
    path.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_no_canary_leaves_through_the_tools(
    transport: str,
    settings: Settings,
    tmp_path: Path,
    dataset_env: Path,  # noqa: F811
    fake_hub: FakeHub,  # noqa: F811
) -> None:
    outputs: list[str] = []
    kaggle = FakeKaggle()
    kaggle.add(FakeDataset("uciml", "iris", "Iris Species", {"Iris.csv": IRIS_CSV}))
    with kaggle:
        async with attacked_server(transport, settings, tmp_path, fake_hub, kaggle) as (
            client,
            log,
        ):

            async def call(tool: str, **arguments: object) -> Any:
                result = await client.call_tool(tool, arguments)
                outputs.append(result.model_dump_json())
                for item in result.content:
                    text = getattr(item, "text", "")
                    if text[:1] in ("{", "["):
                        json.loads(text)  # masking kept the JSON text valid
                return result

            iris = "hf:scikit-learn/iris"
            # Item 4: an environment variable is not a secret reference.
            for name in ("OPENAI_API_KEY", "DATABASE_URL"):
                refused = await call("download_dataset", ref=iris, credentials=f"secret://{name}")
                assert f"secret://{name} is not a declared secret" in error_text(refused)
            # A stored secret bound to another host, and one credential sent to the other service.
            hub_host = fake_hub.url.removeprefix("http://")
            refused = await call("download_dataset", ref=iris, credentials="secret://FILE_KEY")
            assert (
                f"secret://FILE_KEY may be sent to api.example.com only; this call would send it "
                f"to {hub_host}" in error_text(refused)
            )
            refused = await call(
                "download_dataset", ref="kaggle:uciml/iris", credentials="secret://HF_TOKEN"
            )
            assert f"secret://HF_TOKEN may be sent to {hub_host} only" in error_text(refused)
            # Registering the name of an environment variable does not release its value.
            pending = payload(
                await call("set_secret", name="OPENAI_API_KEY", hosts=["evil.example"])
            )
            assert pending["status"] == "pending"
            refused = await call(
                "download_dataset", ref=iris, credentials="secret://OPENAI_API_KEY"
            )
            assert "not a declared secret" in error_text(refused)
            # Item 5: a class label equal to a secret, as a key of predict's preview.
            data = labelled_csv(tmp_path / "labels.csv", ENV_CANARY)
            job = payload(
                await call(
                    "train_model",
                    dataset=str(data),
                    target="label",
                    time_budget_s=5,
                    wait_s=45,
                    models=["linear"],
                )
            )
            while job["status"] in ("queued", "running"):  # no call waits longer than 50 s
                job = payload(await call("job_status", job_id=job["job_id"], wait_s=45))
            assert job["status"] == "succeeded", job
            predicted = payload(await call("predict", model=job["model_id"], dataset=str(data)))
            assert "proba_***HF_TOKEN***" in predicted["preview"][0]
            listing = payload(await call("list_secrets"))
            assert {s["name"] for s in listing["secrets"]} >= {"HF_TOKEN", "FILE_KEY"}
            assert "OPENAI_API_KEY" not in {s["name"] for s in listing["secrets"]}
            # The server keeps serving, and the credentials it does own still work.
            downloaded = payload(await call("download_dataset", ref=iris))
            assert downloaded["files"]
            assert payload(await call("list_jobs"))["count"] >= 1
        server_log = log.read_text()
    database = b"".join(p.read_bytes() for p in settings.home.glob("mltrainer.db*") if p.is_file())
    blob = "\n".join(outputs)
    assert "***HF_TOKEN***" in blob  # it was there to leak, and was masked
    assert leaks(blob) == []
    assert leaks(server_log) == []
    assert leaks(database.decode("utf-8", "replace")) == []
    # What reached the services: the Hub got its own token, and nothing else got anything.
    to_hub = "\n".join(str(request.headers) for request in fake_hub.requests)
    assert ENV_CANARY in to_hub
    assert leaks(to_hub, (UNDECLARED, DB_PASSWORD, FILE_CANARY)) == []
    assert leaks("\n".join(str(request.headers) for request in kaggle.requests)) == []

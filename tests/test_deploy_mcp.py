"""Through a real MCP client: train → deploy_model(space=True) against the fake Hub; refusals are
tool errors and the server keeps serving; the token leaks nowhere."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import error_text, payload, train_until_done
from deploy_fixtures import CANARY, token_only_in_authorization
from fakes.hf import FakeHub
from fakes.hub_write import FakeToken

from mltrainer.state.settings import Settings

pytest_plugins = ["deploy_fixtures"]
REPO = "fakeuser/churn"


@asynccontextmanager
async def client_for(settings: Settings) -> AsyncIterator[Any]:
    """An MCP client of a fresh server that has the deploy_model tool."""
    from mcp import Client

    from mltrainer.server.app import create_server

    async with Client(create_server(settings)) as client:
        yield client


def database_text(path: Path) -> str:
    with sqlite3.connect(path) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(str(db.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables)


@pytest.mark.anyio
async def test_train_then_deploy_with_a_space(
    home: Path,
    churn_csv: Path,
    hub: FakeHub,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from huggingface_hub import ModelCard

    monkeypatch.setenv("HF_TOKEN", CANARY)
    caplog.set_level(logging.DEBUG)
    settings = Settings(home=home, hf_endpoint=hub.url)
    async with client_for(settings) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert tools["deploy_model"].output_schema and len(tools["deploy_model"].description) > 200
        job = payload(
            await train_until_done(
                client, {"dataset": str(churn_csv), "target": "label", "time_budget_s": 8}
            )
        )
        assert job["status"] == "succeeded"

        preview = payload(
            await client.call_tool(
                "deploy_model", {"model": job["job_id"], "repo_id": REPO, "dry_run": True}
            )
        )
        assert preview["dry_run"] and hub.requests == []

        progress: list[float] = []
        messages: list[str] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)
            messages.append(message or "")

        deployed = payload(
            await client.call_tool(
                "deploy_model",
                {"model": job["model_id"], "repo_id": REPO, "space": True, "private": False},
                progress_callback=on_progress,
            )
        )
        assert progress and progress == sorted(progress)
        assert any(m.startswith(f"Sent model.skops to {REPO}") for m in messages), messages
        assert deployed["committed"] and deployed["repo_url"] == f"{hub.url}/{REPO}"
        assert deployed["space_url"] == f"{hub.url}/spaces/{REPO}-demo"
        assert deployed["card_preview"] == preview["card_preview"]
        card = ModelCard(deployed["card_preview"]).data
        holdout = json.loads((home / "models" / job["model_id"] / "metrics.json").read_text())
        assert {r.metric_type: r.metric_value for r in card.eval_results} == holdout["holdout"]
        assert len(hub.writer.commits(REPO)) == 2
        assert len(hub.writer.commits(f"{REPO}-demo", "space")) == 2

        again = payload(
            await client.call_tool(
                "deploy_model", {"model": job["job_id"], "repo_id": REPO, "space": True}
            )
        )
        assert not again["committed"] and again["commit_sha"] == deployed["commit_sha"]
        assert len(hub.writer.commits(REPO)) == 2
        assert any("stays public" in note for note in again["notes"])

        bad = await client.call_tool(
            "deploy_model", {"model": job["model_id"], "repo_id": "just-a-name"}
        )
        assert "namespace/name" in error_text(bad)
        hub.writer.tokens[CANARY] = FakeToken("fakeuser", role="read")
        refused = await client.call_tool(
            "deploy_model", {"model": job["model_id"], "repo_id": REPO}
        )
        assert "read-only" in error_text(refused)
        hub.writer.tokens[CANARY] = FakeToken("fakeuser")
        hub.writer.fail_paths["/api/whoami-v2"] = 500
        failed = await client.call_tool("deploy_model", {"model": job["model_id"], "repo_id": REPO})
        assert "HTTP 500" in error_text(failed)
        unknown = await client.call_tool("deploy_model", {"model": "model_nope", "repo_id": REPO})
        assert "model_nope" in error_text(unknown)
        listed = payload(await client.call_tool("list_jobs", {}))  # still serving
        assert listed["count"] >= 1

        outputs = [deployed, again, preview, error_text(bad), error_text(refused)]
        assert CANARY not in json.dumps(outputs)
        log = await client.read_resource(f"mltrainer://jobs/{job['job_id']}/log")
        assert CANARY not in log.contents[0].text

    assert token_only_in_authorization(hub, CANARY) >= 4
    assert CANARY not in database_text(settings.db_path)
    assert CANARY not in caplog.text
    captured = capfd.readouterr()
    assert CANARY not in captured.out + captured.err

"""The MCP App views over MCP: bound to their tools for hosts that negotiated MCP Apps, invisible
to every other client (which never receives HTML), and the app-only job_timeline tool."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from canary import Canary
from conftest import connect, error_text, payload, train_until_done, write_classification_csv
from mcp.client.extension import advertise
from mcp.shared.exceptions import MCPError
from profiling_files import warnings_table

from mltrainer.server.ui import DASHBOARD_URI, PROFILE_URI
from mltrainer.state.settings import Settings

UI = "io.modelcontextprotocol/ui"
APP_MIME = "text/html;profile=mcp-app"
APPS = [advertise(UI, {"mimeTypes": [APP_MIME]})]
# What a view must not hold: anything that reaches the network or loads another file.
REMOTE = re.compile(
    r"""(src|href)\s*=\s*["']?(https?:)?//|<link\b|<script[^>]+\bsrc\b|@import|"""
    r"""\bfetch\(|XMLHttpRequest|WebSocket|EventSource|sendBeacon|importScripts""",
    re.IGNORECASE,
)

pytestmark = pytest.mark.anyio


def text_blocks(result: Any) -> list[str]:
    return [block.text for block in result.content if block.type == "text"]


@pytest.mark.parametrize(
    "extensions",
    [[], [advertise(UI, {})], [advertise(UI, {"mimeTypes": ["text/html"]})]],
    ids=["no extensions", "ui without mime types", "ui without the app profile"],
)
async def test_a_client_without_mcp_apps_sees_no_view_and_no_app_only_tool(
    settings: Settings, extensions: list[Any]
) -> None:
    async with connect("memory", settings, extensions=extensions) as client:
        tools = (await client.list_tools()).tools
        assert "job_timeline" not in {tool.name for tool in tools}
        assert [tool.name for tool in tools if tool.meta and "ui" in tool.meta] == []
        resources = (await client.list_resources()).resources
        assert [r for r in resources if str(r.uri).startswith("ui://")] == []
        for uri in (DASHBOARD_URI, PROFILE_URI):
            with pytest.raises(MCPError, match="did not negotiate MCP Apps"):
                await client.read_resource(uri)
        hidden = await client.call_tool("job_timeline", {"job_id": "job_000000000000"})
        assert error_text(hidden) == "Unknown tool: job_timeline"


async def test_a_host_with_mcp_apps_gets_each_view_bound_to_its_tools(settings: Settings) -> None:
    async with connect("memory", settings, extensions=APPS) as client:
        assert client.server_capabilities.extensions == {UI: {}}
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        for name in ("train_model", "job_status"):
            assert tools[name].meta == {"ui": {"resourceUri": DASHBOARD_URI}}
        assert tools["profile_dataset"].meta == {"ui": {"resourceUri": PROFILE_URI}}
        timeline = tools["job_timeline"]
        assert timeline.meta == {"ui": {"resourceUri": DASHBOARD_URI, "visibility": ["app"]}}
        assert timeline.annotations and timeline.annotations.read_only_hint
        assert timeline.input_schema["additionalProperties"] is False
        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        for uri in (DASHBOARD_URI, PROFILE_URI):
            assert listed[uri].mime_type == APP_MIME
            content = (await client.read_resource(uri)).contents[0]
            assert content.mime_type == APP_MIME
            html = content.text
            assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
            # One self-contained file: the shared bridge and style are inlined, nothing remote.
            assert "//@common.js" not in html and "/*@common.css*/" not in html
            assert "ui/initialize" in html and "--color-text-primary" in html
            assert REMOTE.findall(html) == []
            assert ".innerHTML" not in html  # values are set as text, never parsed as HTML


async def test_results_are_the_same_for_clients_with_and_without_mcp_apps(
    settings: Settings, tmp_path: Path
) -> None:
    data = warnings_table(tmp_path / "customers.csv", rows=300)
    results = []
    for extensions in ([], APPS):
        async with connect("memory", settings, extensions=extensions) as client:
            result = await client.call_tool("profile_dataset", {"dataset": str(data)})
            results.append(payload(result) and result)
    plain, apps = results
    assert [b.type for b in plain.content] == [b.type for b in apps.content]
    assert plain.structured_content.keys() == apps.structured_content.keys()
    assert plain.structured_content["columns"] == apps.structured_content["columns"]
    for text in text_blocks(plain) + text_blocks(apps):
        assert "<html" not in text.lower() and "<!doctype" not in text.lower()
        json.loads(text)  # the structured result as JSON text, as before


async def test_job_timeline_gives_stage_timings_new_events_and_the_ranked_leaderboard(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = Canary.make("HF_TOKEN", prefix="hf_")
    monkeypatch.setenv(canary.name, canary.value)
    data = write_classification_csv(tmp_path / "churn.csv", rows=300)
    frame = data.read_text().replace(",yes\n", f",{canary.value}\n")
    data.write_text(frame)  # one class is named like the secret: it must never show
    async with connect("memory", settings, extensions=APPS) as client:
        job = payload(
            await train_until_done(
                client, {"dataset": str(data), "target": "label", "time_budget_s": 15}
            )
        )
        assert job["status"] == "succeeded"
        first = await client.call_tool("job_timeline", {"job_id": job["job_id"]})
        timeline = payload(first)
        assert [s["name"] for s in timeline["stages"]] == ["load", "profile", "train"]
        assert all(s["status"] == "succeeded" and s["duration_s"] >= 0 for s in timeline["stages"])
        ids = [event["id"] for event in timeline["events"]]
        assert ids == sorted(ids) and timeline["cursor"] == ids[-1] and not timeline["more_events"]
        assert any(e["message"] == "Stage 'train' started." for e in timeline["events"])
        scores = [entry["cv_mean"] for entry in timeline["leaderboard"]]
        assert scores and scores == sorted(scores, reverse=True)  # roc_auc: higher is better
        assert timeline["decisions"] and timeline["holdout"]
        assert timeline["model_id"] == job["model_id"] and timeline["metric"] == "roc_auc"

        newer = payload(
            await client.call_tool(
                "job_timeline", {"job_id": job["job_id"], "after_event": timeline["cursor"]}
            )
        )
        assert newer["events"] == [] and newer["cursor"] == timeline["cursor"]
        middle = ids[len(ids) // 2]
        rest = payload(
            await client.call_tool("job_timeline", {"job_id": job["job_id"], "after_event": middle})
        )
        assert [e["id"] for e in rest["events"]] == [i for i in ids if i > middle]

        every_text = json.dumps(timeline) + " ".join(text_blocks(first))
        assert canary.value not in every_text and canary.value[:24] not in every_text
        assert "***HF_TOKEN***" in every_text  # it was there (a class name), masked

        unknown = await client.call_tool("job_timeline", {"job_id": "job_000000000000"})
        assert "list_jobs" in error_text(unknown)
        negative = await client.call_tool(
            "job_timeline", {"job_id": job["job_id"], "after_event": -1}
        )
        assert negative.is_error
        extra = await client.call_tool("job_timeline", {"job_id": job["job_id"], "limit": 5})
        assert "Unknown argument 'limit'" in error_text(extra)

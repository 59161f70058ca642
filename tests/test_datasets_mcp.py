"""search_datasets and download_dataset through a real MCP client (in memory)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import connect, error_text, payload
from fakes.data import IRIS_CSV
from fakes.kaggle import FakeKaggle

from mltrainer.state.settings import Settings

pytest_plugins = ["datasets_fixtures"]


@pytest.mark.anyio
async def test_tools_over_mcp(
    ds_settings: Settings, fake_kaggle: FakeKaggle, fake_hub: Any, kaggle_creds: None
) -> None:
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    async with connect("memory", ds_settings) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert {"search_datasets", "download_dataset"} <= set(tools)
        assert tools["download_dataset"].output_schema is not None
        assert "kaggle-competition:SLUG" in (tools["download_dataset"].description or "")

        found = payload(await client.call_tool("search_datasets", {"query": "iris"}))
        assert [hit["ref"] for hit in found["results"]] == [
            "kaggle:uciml/iris",
            "hf:scikit-learn/iris",
        ]
        assert len(json.dumps(found)) < 1500

        result = payload(
            await client.call_tool(
                "download_dataset", {"ref": "kaggle:uciml/iris"}, progress_callback=on_progress
            )
        )
        assert result["files"][0]["path"] == "Iris.csv" and not result["cached"]
        assert (Path(result["local_dir"]) / "Iris.csv").read_bytes() == IRIS_CSV
        assert updates and updates[-1][0] == updates[-1][1] and updates[-1][2] == "done"
        assert [u[0] for u in updates] == sorted(u[0] for u in updates)

        again = payload(await client.call_tool("download_dataset", {"ref": "kaggle:uciml/iris"}))
        assert again["cached"] and again["dataset_id"] == result["dataset_id"]

        resource = await client.read_resource(f"mltrainer://datasets/{result['dataset_id']}")
        body = json.loads(resource.contents[0].text)  # type: ignore[union-attr]
        assert body["dataset_id"] == result["dataset_id"]

        # Failures are tool errors that say what to do; the server keeps serving.
        refused = await client.call_tool("download_dataset", {"ref": "../../etc/passwd"})
        assert "'..' components are not allowed" in error_text(refused)
        missing = await client.call_tool("download_dataset", {"ref": "kaggle:nobody/nothing"})
        assert "search_datasets" in error_text(missing)
        bad_limit = await client.call_tool("search_datasets", {"query": "x", "limit": 0})
        assert bad_limit.is_error
        still = payload(await client.call_tool("download_dataset", {"ref": result["dataset_id"]}))
        assert still["cached"]

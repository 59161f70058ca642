"""profile_dataset through a real MCP client: structured profile, images, artifacts, errors."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import connect
from profiling_files import bad_cases, warnings_table

from mltrainer.state.settings import Settings


def text_of(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


@pytest.mark.anyio
async def test_profile_dataset_over_mcp(settings: Settings, tmp_path: Path) -> None:
    path = warnings_table(tmp_path / "churn.csv")
    async with connect("memory", settings) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        tool = tools["profile_dataset"]
        assert tool.output_schema is not None and "warnings" in tool.output_schema["properties"]
        assert tool.description and "leakage" in tool.description

        result = await client.call_tool(
            "profile_dataset", {"dataset": str(path), "target": "churned"}
        )
        assert not result.is_error, text_of(result)
        profile = result.structured_content
        assert profile is not None
        assert profile["target"]["task"] == "binary"
        assert {w["column"] for w in profile["warnings"] if w["kind"] == "leakage"} == {
            "cancel_reason",
            "churned_score",
        }
        images = [c for c in result.content if c.type == "image"]
        assert len(images) == 3
        assert base64.b64decode(images[0].data)[:4] == b"\x89PNG"
        assert json.loads(result.content[0].text)["n_rows"] == 1004

        stored = await client.read_resource(f"mltrainer://profiles/{profile['profile_id']}")
        assert json.loads(stored.contents[0].text)["artifact_id"] == profile["artifact_id"]

        # a bad file is a clear error, and the server keeps serving
        empty, _ = bad_cases(tmp_path / "bad")["empty"]
        failed = await client.call_tool("profile_dataset", {"dataset": str(empty)})
        assert failed.is_error and "empty (0 bytes)" in text_of(failed)
        outside = await client.call_tool("profile_dataset", {"dataset": "/etc/passwd"})
        assert outside.is_error and "outside the folders tools may read" in text_of(outside)
        plain = await client.call_tool("profile_dataset", {"dataset": str(path), "plots": False})
        assert not plain.is_error and not [c for c in plain.content if c.type == "image"]
        assert plain.structured_content["suggested_targets"][0]["column"] == "churned"

    with sqlite3.connect(settings.db_path) as db:  # Store lists artifacts by job/model only
        kinds = [row[0] for row in db.execute("select kind from artifacts")]
    assert kinds.count("profile") == 2 and kinds.count("plot") == 3


@pytest.mark.anyio
async def test_profile_dataset_by_dataset_id(settings: Settings, tmp_path: Path) -> None:
    from mltrainer.state.secrets import SecretVault
    from mltrainer.state.store import Store
    from mltrainer.tools.datasets.fetch import fetch

    folder = tmp_path / "downloaded"
    folder.mkdir()
    warnings_table(folder / "train.csv", rows=200)
    (folder / "README.md").write_text("not a table\n")
    settings.ensure_dirs()
    store = Store(settings.db_path)
    try:
        vault = SecretVault(settings.secrets_path)
        dataset_id = fetch(str(folder), settings=settings, store=store, vault=vault).dataset_id
    finally:
        store.close()
    async with connect("memory", settings) as client:
        result = await client.call_tool(
            "profile_dataset", {"dataset": dataset_id, "target": "churned", "plots": False}
        )
        assert not result.is_error, text_of(result)
        assert result.structured_content["path"].endswith("train.csv")
        assert result.structured_content["n_rows"] == 204
        missing = await client.call_tool("profile_dataset", {"dataset": "ds_000000000000"})
        assert missing.is_error and "ds_000000000000" in text_of(missing)

"""Every tool is documented: in the README, with a description, limits and an output schema."""

from __future__ import annotations

import pytest
from conftest import REPO, connect

from mltrainer.state.settings import Settings


@pytest.mark.anyio
async def test_every_tool_is_documented(settings: Settings) -> None:
    readme = (REPO / "README.md").read_text()
    async with connect("memory", settings) as client:
        tools = (await client.list_tools()).tools
        resources = (await client.list_resource_templates()).resource_templates
    assert len(tools) >= 14
    for tool in tools:
        assert f"`{tool.name}`" in readme, f"{tool.name} is missing from the README"
        assert tool.description and len(tool.description) >= 60, tool.name
        assert tool.output_schema, f"{tool.name} has no output schema"
        assert tool.annotations is not None, f"{tool.name} has no annotations"
    for template in resources:
        assert template.uri_template in readme, (
            f"{template.uri_template} is missing from the README"
        )

"""Every tool is documented: in the README, with a description, limits and an output schema;
every argument the calling model can pass says what it does."""

from __future__ import annotations

from typing import get_args

import pytest
from conftest import REPO, connect

from mltrainer.state.settings import Settings
from mltrainer.tools.training.engine.families import FAMILIES
from mltrainer.tools.training.request import Task, Validation


@pytest.mark.anyio
async def test_every_tool_is_documented(settings: Settings) -> None:
    readme = (REPO / "README.md").read_text()
    async with connect("memory", settings) as client:
        tools = (await client.list_tools()).tools
        resources = (await client.list_resource_templates()).resource_templates
        prompts = (await client.list_prompts()).prompts
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
    for prompt in prompts:
        assert f"`{prompt.name}`" in readme, f"the prompt {prompt.name} is missing from the README"


@pytest.mark.anyio
async def test_every_argument_says_what_it_does(settings: Settings) -> None:
    async with connect("memory", settings) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for tool in tools.values():
        for name, schema in tool.input_schema.get("properties", {}).items():
            assert len(schema.get("description") or "") >= 15, f"{tool.name}({name}=...)"
    train = tools["train_model"].input_schema["properties"]
    assert all(family in train["models"]["description"] for family in FAMILIES)
    assert "only recorded" in train["instructions"]["description"]
    assert train["task"]["enum"] == list(get_args(Task))
    assert train["validation"]["enum"] == list(get_args(Validation))

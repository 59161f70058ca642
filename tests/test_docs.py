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


def configuration_table() -> str:
    """The README's Configuration table, made from server.json (python -c 'import test_docs;
    print(test_docs.configuration_table())' from tests/ prints it)."""
    import json

    from pydantic_core import PydanticUndefined

    (package,) = json.loads((REPO / "server.json").read_text())["packages"]
    rows = ["| variable | default | what it does |", "| --- | --- | --- |"]
    for variable in package["environmentVariables"]:
        name, text = variable["name"], variable["description"].replace("|", "\\|")
        field = Settings.model_fields.get(name.removeprefix("MLTRAINER_").lower())
        value = None if field is None or field.default_factory else field.default
        default = f"`{value}`" if value not in (None, PydanticUndefined) else ""
        secret = " (a secret)" if variable.get("isSecret") else ""
        rows.append(f"| `{name}` | {default} | {text}{secret} |")
    return "\n".join(rows) + "\n"


def test_the_readme_lists_every_variable_the_server_reads() -> None:
    """server.json is checked against the settings (test_packaging); the README against it."""
    assert configuration_table() in (REPO / "README.md").read_text()

"""Installing where people are: the MCP Registry entry (server.json) against the registry's
published schema, the Claude Desktop bundle's manifest (.ci/mcpb/) against the mcpb schema and
against the server it starts, and the client configuration examples.

The schemas are vendored copies (tests/fixtures/*/README.md says where from and when): the
tests run offline. .ci/bundle-check.sh packs and validates the bundle with the mcpb tool itself,
and .ci/wheel-check.sh starts the server from the built wheel in a clean environment.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import REPO, connect

from mltrainer.state.secret_refs import COMPOSITE, WELL_KNOWN
from mltrainer.state.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
REGISTRY_SCHEMA = FIXTURES / "mcp-registry" / "server.schema.2025-12-11.json"
REGISTRY_SCHEMA_SHA256 = "3fba09590c99f61735d234822279f4223fab9e300c0a81e81c91ab62a4114de0"
MCPB_SCHEMA = FIXTURES / "mcpb" / "mcpb-manifest-v0.4.schema.json"
BUNDLE = REPO / ".ci" / "mcpb"
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def validate(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]


def variables_the_server_reads() -> dict[str, bool]:
    """Every environment variable the server reads -> whether it holds a secret."""
    found = {
        f"MLTRAINER_{name.upper()}": "SecretStr" in str(field.annotation)
        for name, field in Settings.model_fields.items()
    }
    credentials = {"HF_TOKEN"} | {
        var for alternatives in COMPOSITE.values() for alt in alternatives for var in alt
    }
    found.update({var: var != "KAGGLE_USERNAME" for var in credentials})  # a name, not a secret
    return found


# -- the MCP Registry entry ------------------------------------------------------------------


def test_the_vendored_registry_schema_is_the_published_one() -> None:
    assert hashlib.sha256(REGISTRY_SCHEMA.read_bytes()).hexdigest() == REGISTRY_SCHEMA_SHA256
    schema = load(REGISTRY_SCHEMA)
    assert schema["$id"] == load(REPO / "server.json")["$schema"]


def test_server_json_is_valid_and_describes_this_package() -> None:
    entry = load(REPO / "server.json")
    assert validate(entry, load(REGISTRY_SCHEMA)) == []
    assert entry["version"] == PROJECT["version"]
    (package,) = entry["packages"]
    assert package["registryType"] == "pypi" and package["identifier"] == PROJECT["name"]
    assert package["version"] == PROJECT["version"] and package["transport"] == {"type": "stdio"}
    # The registry checks ownership of a PyPI package by this line in its description.
    assert f"mcp-name: {entry['name']}" in (REPO / "README.md").read_text()


def test_server_json_lists_every_variable_the_server_reads_with_secrets_marked() -> None:
    (package,) = load(REPO / "server.json")["packages"]
    listed = {v["name"]: v.get("isSecret", False) for v in package["environmentVariables"]}
    expected = variables_the_server_reads()
    assert sorted(set(expected) - set(listed)) == [], "add these to server.json"
    assert sorted(set(listed) - set(expected)) == [], "the server does not read these"
    assert {name for name, secret in listed.items() if secret} == {
        name for name, secret in expected.items() if secret
    }
    assert all(v["description"] for v in package["environmentVariables"])


def test_a_broken_entry_is_refused_by_the_schema() -> None:
    """The validation can fail: a version range, a missing transport, a long description."""
    entry = load(REPO / "server.json")
    schema = load(REGISTRY_SCHEMA)
    bad = json.loads(json.dumps(entry))
    bad["packages"][0]["version"] = "latest"
    del bad["packages"][0]["transport"]
    bad["description"] = "x" * 101
    problems = validate(bad, schema)
    assert len(problems) >= 3, problems


# -- the Claude Desktop bundle ---------------------------------------------------------------


def test_the_bundle_manifest_is_valid_and_follows_the_package() -> None:
    manifest = load(BUNDLE / "manifest.json")
    assert validate(manifest, load(MCPB_SCHEMA)) == []
    bundle_project = tomllib.loads((BUNDLE / "pyproject.toml").read_text())["project"]
    assert manifest["version"] == PROJECT["version"] == bundle_project["version"]
    assert bundle_project["dependencies"] == [f"{PROJECT['name']}=={PROJECT['version']}"]
    assert (BUNDLE / manifest["server"]["entry_point"]).is_file()


def test_the_bundle_asks_for_credentials_as_sensitive_and_maps_them_to_what_the_server_reads() -> (
    None
):
    manifest = load(BUNDLE / "manifest.json")
    config = manifest["user_config"]
    env = manifest["server"]["mcp_config"]["env"]
    reads = variables_the_server_reads()
    used = set()
    for variable, value in env.items():
        assert variable in reads, variable
        key = re.fullmatch(r"\$\{user_config\.(\w+)\}", value)
        assert key and key.group(1) in config, value
        used.add(key.group(1))
        assert config[key.group(1)].get("sensitive", False) == reads[variable], variable
    assert used == set(config)
    assert config["state_directory"]["type"] == "directory"
    assert {"HF_TOKEN", "KAGGLE_KEY"} <= set(env) and "MLTRAINER_HOME" in env
    for credential in WELL_KNOWN:  # each built-in credential can be given in the bundle
        parts = {credential} | {v for alt in COMPOSITE.get(credential, ()) for v in alt}
        assert parts & set(env), credential


@pytest.mark.anyio
async def test_the_bundle_lists_the_tools_the_server_offers_the_model(settings: Settings) -> None:
    manifest = load(BUNDLE / "manifest.json")
    async with connect("memory", settings) as client:
        offered = [tool.name for tool in (await client.list_tools()).tools]
    assert [tool["name"] for tool in manifest["tools"]] == offered
    assert all(len(tool["description"]) >= 20 for tool in manifest["tools"])


def bundle_entry() -> Any:
    spec = importlib.util.spec_from_file_location("bundle_server", BUNDLE / "src" / "server.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_bundle_treats_empty_settings_as_unset_and_one_folder_as_a_list() -> None:
    environ = {"MLTRAINER_HOME": "", "HF_TOKEN": "", "MLTRAINER_DATA_ROOTS": "/data", "PATH": ""}
    bundle_entry().apply_bundle_settings(environ)
    assert environ == {"MLTRAINER_DATA_ROOTS": '["/data"]', "PATH": ""}
    listed = {"MLTRAINER_DATA_ROOTS": '["/a", "/b"]'}
    bundle_entry().apply_bundle_settings(listed)
    assert listed == {"MLTRAINER_DATA_ROOTS": '["/a", "/b"]'}


@pytest.mark.anyio
async def test_the_bundle_entry_point_serves_mcp_with_the_hosts_settings(
    settings: Settings, tmp_path: Path
) -> None:
    """As Claude Desktop starts it: every user_config as a variable, the unset ones empty."""
    from mcp import Client, StdioServerParameters

    manifest = load(BUNDLE / "manifest.json")
    values = {"state_directory": str(settings.home), "data_folder": str(tmp_path)}
    env = {
        variable: values.get(value[len("${user_config.") : -1], "")
        for variable, value in manifest["server"]["mcp_config"]["env"].items()
    }
    params = StdioServerParameters(
        command=sys.executable,
        args=["-P", str(BUNDLE / "src" / "server.py")],
        env={**env, "PYTHONUNBUFFERED": "1"},
        cwd="/",
    )
    data = tmp_path / "rows.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    async with Client(params) as client:
        tools = (await client.list_tools()).tools
        assert len(tools) == len(manifest["tools"])
        profile = await client.call_tool("profile_dataset", {"dataset": str(data), "plots": False})
        assert not profile.is_error, profile.content  # the data folder is allowed from "/"
    assert (settings.home / "mltrainer.db").is_file()  # the state directory given, not "/"


# -- client configuration examples -------------------------------------------------------------


def test_every_client_example_starts_the_server() -> None:
    examples = load(REPO / "mcp.json.example")
    commands = []
    for key, block in examples.items():
        if key.startswith("_"):
            continue
        servers = block.get("mcpServers") or block.get("servers")
        assert servers, key
        for server in servers.values():
            if server.get("type") == "http":
                assert server["url"].endswith("/mcp") and "Authorization" in server["headers"]
                continue
            commands.append(" ".join([server["command"], *server.get("args", [])]))
    assert any(c.endswith("/.venv/bin/mltrainer-mcp") for c in commands)
    assert "uvx mltrainer-mcp" in commands and "pipx run mltrainer-mcp" in commands

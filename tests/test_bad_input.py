"""Bad input gives a clear tool error, and the server keeps serving."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import connect, error_text, payload, train_until_done

from mltrainer.state.settings import Settings


@pytest.fixture
def bad_files(tmp_path: Path, churn_csv: Path) -> dict[str, tuple[dict, str]]:
    folder = tmp_path / "a_directory"
    folder.mkdir()
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header_only = tmp_path / "header_only.csv"
    header_only.write_text("a,b,label\n")
    binary = tmp_path / "image.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    return {
        "missing file": ({"dataset": str(tmp_path / "nope.csv"), "target": "label"}, "nope.csv"),
        "unknown target": ({"dataset": str(churn_csv), "target": "churned"}, "label"),
        "directory": ({"dataset": str(folder), "target": "label"}, "a_directory"),
        "empty csv": ({"dataset": str(empty), "target": "label"}, "empty"),
        "header only": ({"dataset": str(header_only), "target": "label"}, "no data rows"),
        "binary": ({"dataset": str(binary), "target": "label"}, "image.csv"),
        "outside roots": ({"dataset": "/etc/passwd", "target": "label"}, ""),
        "traversal": ({"dataset": "../../../../etc/passwd", "target": "label"}, ""),
    }


@pytest.mark.anyio
async def test_bad_train_inputs_are_clear_errors(settings: Settings, bad_files) -> None:
    async with connect("memory", settings) as client:
        for case, (args, expected) in bad_files.items():
            result = await client.call_tool("train_model", {**args, "wait_s": 0})
            text = error_text(result)
            assert expected in text, (case, text)
            assert text.startswith("Error executing tool train_model: "), (case, text)
            assert len(text) > 60, (case, text)  # a sentence, not a bare failure
            # still serving
            assert payload(await client.call_tool("list_jobs", {}))["count"] == 0, case


@pytest.mark.anyio
async def test_bad_arguments_are_rejected_by_the_schema(
    settings: Settings, churn_csv: Path
) -> None:
    async with connect("memory", settings) as client:
        for args in (
            {"dataset": str(churn_csv), "target": "label", "time_budget_s": 0},
            {"dataset": str(churn_csv), "target": "label", "task": "astrology"},
            {"dataset": "", "target": "label"},
        ):
            result = await client.call_tool("train_model", args)
            assert result.is_error, args
        assert payload(await client.call_tool("list_jobs", {}))["count"] == 0


@pytest.mark.anyio
async def test_predict_with_unknown_model_or_wrong_columns(
    settings: Settings, churn_csv: Path, tmp_path: Path
) -> None:
    async with connect("memory", settings) as client:
        text = error_text(
            await client.call_tool("predict", {"model": "model_nope", "dataset": str(churn_csv)})
        )
        assert "model_nope" in text and "train_model" in text
        job = payload(
            await train_until_done(
                client, {"dataset": str(churn_csv), "target": "label", "time_budget_s": 10}
            )
        )
        other = tmp_path / "other.csv"
        other.write_text("p,q\n1,2\n3,4\n")
        text = error_text(
            await client.call_tool("predict", {"model": job["model_id"], "dataset": str(other)})
        )
        assert "x1" in text and "same columns" in text


@pytest.mark.anyio
async def test_no_call_waits_past_the_clients_request_timeout(
    settings: Settings, churn_csv: Path
) -> None:
    """TypeScript-SDK clients give up on a request after 60 s: waits are capped well under."""
    async with connect("memory", settings) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        for name in ("train_model", "job_status"):
            wait = tools[name].input_schema["properties"]["wait_s"]
            assert wait["maximum"] <= 50 and wait["default"] <= 50, name
            assert "at most 50" in wait["description"], name  # the caller is told why
        too_long = (
            ("train_model", {"dataset": str(churn_csv), "target": "label", "wait_s": 3600}),
            ("job_status", {"job_id": "job_x", "wait_s": 51}),
        )
        for name, args in too_long:
            assert "less than or equal to 50" in error_text(await client.call_tool(name, args))
        assert payload(await client.call_tool("list_jobs", {}))["count"] == 0


@pytest.mark.anyio
async def test_a_defect_is_an_error_that_says_so_and_the_server_keeps_serving(
    settings: Settings,
) -> None:
    """An exception no tool expects: the caller reads what happened and what to do, never the
    exception's own text (it may quote data or paths); the SDK still logs the crash."""
    from mcp import Client

    from mltrainer.server.app import create_server

    def explode(name: str) -> str:
        """A tool with a bug."""
        raise KeyError(f"/private/{name}")

    server = create_server(settings)
    server.add_tool(explode, name="explode")
    async with Client(server) as client:
        text = error_text(await client.call_tool("explode", {"name": "token"}))
        assert text.startswith("Error executing tool explode: An internal error (KeyError)")
        assert "report it with the server's log" in text and "private" not in text
        text = error_text(await client.call_tool("explode", {"name": "x", "extra": 1}))
        assert "Unknown argument 'extra'" in text  # bad input is still the caller's to fix
        assert payload(await client.call_tool("list_jobs", {}))["count"] == 0


@pytest.mark.anyio
async def test_a_parquet_file_pandas_wrote_with_its_default_index_trains(
    settings: Settings, churn_csv: Path, tmp_path: Path
) -> None:
    """pandas stores its default RangeIndex as a description in the file's metadata."""
    import pandas as pd

    path = tmp_path / "churn.parquet"
    pd.read_csv(churn_csv).to_parquet(path)
    async with connect("memory", settings) as client:
        job = payload(
            await train_until_done(
                client, {"dataset": str(path), "target": "label", "time_budget_s": 10}
            )
        )
        assert job["status"] == "succeeded" and job["model_id"], job

"""Bad input gives a clear tool error, and the server keeps serving."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import connect, error_text, payload

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
            await client.call_tool(
                "train_model",
                {"dataset": str(churn_csv), "target": "label", "time_budget_s": 10, "wait_s": 120},
            )
        )
        other = tmp_path / "other.csv"
        other.write_text("p,q\n1,2\n3,4\n")
        text = error_text(
            await client.call_tool("predict", {"model": job["model_id"], "dataset": str(other)})
        )
        assert "x1" in text and "same columns" in text

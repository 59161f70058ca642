"""analyze_model through a real MCP client: a planted weak slice is found and headlines, a tiny
unlucky slice does not, plots come back, bad input is a clear tool error."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import error_text, payload, train_until_done

from mltrainer.state.masking import Masker
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.analysis import HOLDOUT_FILE, model_facts, write_holdout_rows
from mltrainer.tools.training.model import LoadedModel, load_record

TRAIN_ROWS = 2000
PNG = b"\x89PNG\r\n\x1a\n"


@asynccontextmanager
async def analysis_client(settings: Settings) -> AsyncIterator[Any]:
    """A client of the real server, with the analysis tools registered."""
    from mcp import Client

    from mltrainer.server import analysis
    from mltrainer.server.app import create_server

    mcp = create_server(settings)
    if "analyze_model" not in {tool.name for tool in await mcp.list_tools()}:
        analysis.register(mcp)  # until server/app.py registers the analysis domain
    async with Client(mcp) as client:
        yield client


def planted_frame(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """A clean rule everywhere but colour 'e', whose label is a coin flip; x2 sometimes missing;
    'batch' carries no signal (and is left out of training)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    colour = rng.choice(list("abcde"), size=rows)
    clean = x1 + 0.5 * x2 > 0
    label = np.where(colour == "e", rng.random(rows) < 0.5, clean)
    x2[rng.random(rows) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "colour": colour,
            "batch": rng.choice([f"b{i}" for i in range(5)], size=rows),
            "label": np.where(label, "yes", "no"),
        }
    )


async def train(client: Any, dataset: Path, **arguments: Any) -> dict[str, Any]:
    job = payload(
        await train_until_done(
            client, {"dataset": str(dataset), "time_budget_s": 5, "plots": False} | arguments
        )
    )
    assert job["status"] == "succeeded", job
    return job


def loaded(settings: Settings, model_id: str) -> LoadedModel:
    store = Store(settings.db_path)
    try:
        return load_record(store.get_model(model_id), store)
    finally:
        store.close()


def model_folder(settings: Settings, model_id: str) -> Path:
    store = Store(settings.db_path)
    try:
        return Path(store.get_model(model_id).path)
    finally:
        store.close()


def headline(result: dict[str, Any]) -> dict[str, Any]:
    assert result["slices"], result
    return result["slices"][0]


@pytest.mark.anyio
async def test_the_planted_weak_slice_headlines_and_a_tiny_unlucky_one_does_not(
    settings: Settings, tmp_path: Path
) -> None:
    frame = planted_frame()
    frame.iloc[:TRAIN_ROWS].to_csv(tmp_path / "train.csv", index=False)
    test = frame.iloc[TRAIN_ROWS:].reset_index(drop=True)
    async with analysis_client(settings) as client:
        # One family, so that which model a loaded machine's clock leaves (the baseline, one
        # candidate or a blend) cannot change the slices beside the planted one.
        job = await train(
            client,
            tmp_path / "train.csv",
            target="label",
            exclude_columns=["batch"],
            models=["linear"],
        )
        folder = model_folder(settings, job["model_id"])
        model = loaded(settings, job["model_id"])
        # The job's held-out rows: here, test rows the model never saw (and their row numbers in
        # the whole file), written as a finished job will write them.
        write_holdout_rows(
            folder,
            model,
            test,
            model_facts(folder),
            Masker(),
            row_numbers=np.arange(TRAIN_ROWS, len(frame)),
        )
        assert (folder / HOLDOUT_FILE).is_file()

        held = await client.call_tool("analyze_model", {"model": job["job_id"]})
        result = payload(held)
        assert result["source"] == "holdout" and result["rows"] == len(test)
        top = headline(result)
        assert top["description"] == "colour = 'e'" and top["significant"], top
        assert top["lift"] > 2 and top["rows"] == int((test["colour"] == "e").sum())
        assert top["p_adjusted"] < 1e-6
        # every other slice is either not significant or far milder than the planted one
        assert all(s["lift"] < top["lift"] / 1.5 for s in result["slices"][1:])
        images = [c for c in held.content if getattr(c, "type", "") == "image"]
        assert images and all(base64.b64decode(i.data)[:8] == PNG for i in images)
        assert {p["name"] for p in result["plots"]} >= {"slices", "calibration", "per_class"}
        for plot in result["plots"]:
            assert Path(plot["path"]).read_bytes()[:8] == PNG
        detail = result["classification"]
        assert {c["label"] for c in detail["per_class"]} == {"yes", "no"}
        assert detail["confusion_pairs"] and detail["calibration"]["bins"]
        wrong = detail["confident_errors"]
        assert wrong and all(TRAIN_ROWS <= r["row"] < len(frame) for r in wrong)
        for error in wrong:  # row numbers point at the right rows of the file
            assert frame.loc[error["row"], "label"] == error["actual"] != error["predicted"]
        more = [s for s in result["suggestions"] if s["action"] == "more_data"]
        assert more and more[0]["slice"] == "colour = 'e'"
        assert more[0]["evidence"]["ref"] == "slices[0]"

        # A slice of four test rows, three of them wrong: by raw error rate the worst of all.
        predicted = model.predict_frame(test)["prediction"]
        wrong_rows = np.flatnonzero((predicted != test["label"]) & (test["colour"] != "e"))
        right_rows = np.flatnonzero((predicted == test["label"]) & (test["colour"] != "e"))
        tiny = [*wrong_rows[:3], right_rows[0]]
        test.loc[tiny, "batch"] = "tiny"
        test.to_csv(tmp_path / "test.csv", index=False)
        assert top["error"] < 3 / 4  # ranked by raw error rate, "tiny" would headline

        result = payload(
            await client.call_tool(
                "analyze_model", {"model": job["model_id"], "dataset": str(tmp_path / "test.csv")}
            )
        )
        assert result["source"] == "dataset"
        assert headline(result)["description"] == "colour = 'e'"
        assert not any("tiny" in s["description"] for s in result["slices"])
        assert result["min_slice_rows"] > len(tiny)


@pytest.mark.anyio
async def test_sensitive_columns_never_show_a_value(settings: Settings, tmp_path: Path) -> None:
    frame = planted_frame(rows=1500, seed=1)
    frame.to_csv(tmp_path / "all.csv", index=False)
    async with analysis_client(settings) as client:
        job = await train(client, tmp_path / "all.csv", target="label")
        result = payload(
            await client.call_tool(
                "analyze_model",
                {
                    "model": job["model_id"],
                    "dataset": str(tmp_path / "all.csv"),
                    "sensitive_columns": ["COLOUR", "x1"],
                    "plots": False,
                },
            )
        )
    assert result["sensitive_columns"] == ["colour", "x1"]
    for row in result["classification"]["confident_errors"]:
        assert row["row"] is not None and not {"colour", "x1"} & set(row["values"])
        assert "x2" in row["values"]
    for piece in result["slices"]:
        assert not {"colour", "x1"} & set(piece["columns"]) or piece["kind"] == "missing"
    assert any("trained on" in note for note in result["notes"])


@pytest.mark.anyio
async def test_bad_input_is_a_clear_error_and_the_server_keeps_serving(
    settings: Settings, tmp_path: Path
) -> None:
    frame = planted_frame(rows=400, seed=2)
    frame.to_csv(tmp_path / "data.csv", index=False)
    frame.drop(columns=["label"]).to_csv(tmp_path / "unlabelled.csv", index=False)
    async with analysis_client(settings) as client:
        unknown = await client.call_tool("analyze_model", {"model": "model_nope"})
        assert "No model with id 'model_nope'" in error_text(unknown)
        no_job = await client.call_tool("analyze_model", {"model": "job_nope"})
        assert "No job with id 'job_nope'" in error_text(no_job)

        job = await train(client, tmp_path / "data.csv", target="label")
        # a model folder from before jobs kept their held-out rows
        (model_folder(settings, job["model_id"]) / HOLDOUT_FILE).unlink()
        no_rows = error_text(await client.call_tool("analyze_model", {"model": job["model_id"]}))
        assert "no stored held-out rows" in no_rows and "dataset=" in no_rows
        no_target = error_text(
            await client.call_tool(
                "analyze_model",
                {"model": job["model_id"], "dataset": str(tmp_path / "unlabelled.csv")},
            )
        )
        assert "no column 'label'" in no_target and "target=" in no_target
        wrong_target = error_text(
            await client.call_tool(
                "analyze_model",
                {"model": job["model_id"], "dataset": str(tmp_path / "data.csv"), "target": "nope"},
            )
        )
        assert "no column 'nope'" in wrong_target
        missing = error_text(
            await client.call_tool(
                "analyze_model", {"model": job["model_id"], "dataset": str(tmp_path / "gone.csv")}
            )
        )
        assert "gone.csv" in missing

        clusters = await train(
            client, tmp_path / "unlabelled.csv", task="clustering", exclude_columns=["batch"]
        )
        clustering = error_text(
            await client.call_tool(
                "analyze_model",
                {
                    "model": clusters["job_id"],
                    "dataset": str(tmp_path / "data.csv"),
                    "target": "label",
                },
            )
        )
        assert "clustering model" in clustering and "target='label'" in clustering

        # still serving: a good call right after the bad ones
        fine = payload(
            await client.call_tool(
                "analyze_model",
                {"model": job["model_id"], "dataset": str(tmp_path / "data.csv"), "plots": False},
            )
        )
        assert fine["rows"] == len(frame)

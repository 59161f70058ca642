"""Predictions that warn (issue #14): predict says, with counts and example rows, where the rows
it is given differ from the training rows -- never silently. Through a real MCP server."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import connect, payload, train_until_done
from honesty_fixtures import Trained, train_all

from bench import traps
from mltrainer.state.settings import Settings
from tests.engine_fixtures import series_frame

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return train_all(tmp_path_factory.mktemp("odd"), {"odd": (traps.odd_rows(0), {})})["odd"]


def warning(prediction: dict, kind: str) -> dict:
    found = [w for w in prediction["warnings"] if w["kind"] == kind]
    assert found, prediction["warnings"]
    return found[0]


def test_rows_with_nothing_known_are_named(odd: Trained) -> None:
    missing = warning(odd.prediction, "mostly_missing")
    assert missing["count"] == 5 and missing["rows"] == [0, 1, 2, 3, 4]
    assert "5 row(s)" in missing["message"] and "(5 have none at all)" in missing["message"]


def test_values_far_outside_the_training_range_are_named(odd: Trained) -> None:
    outside = warning(odd.prediction, "out_of_range")
    assert outside["columns"] == ["x1"] and outside["count"] == 5
    assert outside["rows"] == [5, 6, 7, 8, 9]


def test_categories_never_seen_are_counted(odd: Trained) -> None:
    unseen = warning(odd.prediction, "unseen_categories")
    assert unseen["columns"] == ["shop"] and unseen["count"] == 10
    assert unseen["rows"] == [10, 11, 12, 13, 14] and "'shop' (10, 29%)" in unseen["message"]


def test_the_training_profile_is_saved_without_its_values(odd: Trained) -> None:
    folder = Path(odd.result["artifacts"]["manifest.json"]).parent
    meta = json.loads((folder / "meta.json").read_text())
    shop = next(f for f in meta["inputs"]["features"] if f["name"] == "shop")
    assert shop["complete"] and len(shop["categories"]) == 3
    text = json.dumps(meta["inputs"])
    assert "north" not in text and "south" not in text  # digests, never the values
    x1 = next(f for f in meta["inputs"]["features"] if f["name"] == "x1")
    assert x1["low"] < -2 and x1["high"] > 2


@pytest.mark.anyio
async def test_a_column_whose_type_changed_is_said_and_still_predicted(
    odd: Trained, tmp_path: Path
) -> None:
    assert odd.settings is not None
    clean = odd.trap.fresh_inputs().iloc[20:40].copy()
    rows = clean.assign(x2=clean["x2"].astype(object))
    rows.iloc[:3, rows.columns.get_loc("x2")] = "unknown"
    clean.to_csv(tmp_path / "clean.csv", index=False)
    rows.to_csv(tmp_path / "typed.csv", index=False)
    settings = Settings(home=odd.settings.home, data_roots=[tmp_path])
    async with connect("memory", settings) as client:
        model = odd.job["model_id"]
        quiet, out = [
            payload(await client.call_tool("predict", {"model": model, "dataset": str(path)}))
            for path in (tmp_path / "clean.csv", tmp_path / "typed.csv")
        ]
    assert quiet["warnings"] == []  # rows like the training rows: nothing to say
    changed = warning(out, "type_changed")
    assert changed["columns"] == ["x2"] and changed["count"] == 3 and changed["rows"] == [0, 1, 2]
    predictions = pd.read_csv(out["predictions_path"])
    assert len(predictions) == 20 and predictions["proba_yes"].notna().all()


@pytest.mark.anyio
async def test_forecast_dates_inside_the_history_are_said(
    settings: Settings, tmp_path: Path
) -> None:
    frame = series_frame(points=120)
    path = tmp_path / "sales.csv"
    frame.to_csv(path, index=False)
    asked = pd.DataFrame({"date": ["2022-03-01", "2022-03-02", "2022-05-05", "2022-05-06"]})
    wanted = tmp_path / "dates.csv"
    asked.to_csv(wanted, index=False)
    async with connect("memory", settings) as client:
        job = payload(
            await train_until_done(
                client,
                {
                    "dataset": str(path),
                    "target": "sales",
                    "task": "forecast",
                    "time_column": "date",
                    "horizon": 7,
                    "time_budget_s": 5,
                    "plots": False,
                },
            )
        )
        assert job["status"] == "succeeded", job["error"]
        out = payload(
            await client.call_tool("predict", {"model": job["model_id"], "dataset": str(wanted)})
        )
    inside = warning(out, "forecast_in_history")
    assert inside["count"] == 2 and inside["rows"] == [0, 1] and inside["columns"] == ["date"]
    assert np.isfinite(pd.read_csv(out["predictions_path"])["prediction"]).all()

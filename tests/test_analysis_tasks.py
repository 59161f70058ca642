"""analyze_model on regression and forecast models, through a real MCP client."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import payload
from test_analysis import PNG, analysis_client, train

from mltrainer.state.settings import Settings

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command


def funnel_frame(rows: int = 900, seed: int = 0) -> pd.DataFrame:
    """y grows with a, and so does its noise: errors grow with the prediction, and the highest
    targets are those with the largest positive noise (which no model can predict). The low
    targets have little noise: no bias expected there."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 3, size=rows)
    b = rng.normal(size=rows)
    y = 5 + 3 * a + 0.5 * b + rng.normal(size=rows) * (0.05 + 1.0 * a)
    return pd.DataFrame({"a": a, "b": b, "y": y})


@pytest.mark.anyio
async def test_regression_errors_grow_with_the_prediction_and_extremes_are_pulled_in(
    settings: Settings, tmp_path: Path
) -> None:
    frame = funnel_frame()
    frame.iloc[:600].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[600:].to_csv(tmp_path / "test.csv", index=False)
    async with analysis_client(settings) as client:
        job = await train(client, tmp_path / "train.csv", target="y", models=["linear"])
        analysed = await client.call_tool(
            "analyze_model", {"model": job["model_id"], "dataset": str(tmp_path / "test.csv")}
        )
    result = payload(analysed)
    detail = result["regression"]
    assert result["measure"] == "mean_abs_error" and result["rows"] == 300
    hetero = detail["heteroscedasticity"]
    assert hetero["detected"] and hetero["spearman_rho"] > 0.2
    bins = hetero["by_prediction"]
    assert bins[-1]["mae"] > 2 * bins[0]["mae"]
    high = next(e for e in detail["extremes"] if e["side"] == "high")
    assert high["verdict"] == "under_predicted" and high["mean_error"] > 0
    assert {e["side"] for e in detail["extremes"]} == {"low", "high"}
    largest = detail["largest_errors"]
    assert abs(largest[0]["error"]) >= abs(largest[-1]["error"])
    for row in largest:  # row numbers point into test.csv
        assert row["actual"] == pytest.approx(frame.iloc[600 + row["row"]]["y"])
    top = result["slices"][0]
    assert top["significant"] and top["columns"] == ["a"] and top["bias"] is not None
    assert {p["name"] for p in result["plots"]} >= {"residuals", "extremes", "slices"}
    images = [c for c in analysed.content if getattr(c, "type", "") == "image"]
    assert len(images) == min(4, len(result["plots"]))
    families = [s for s in result["suggestions"] if s["action"] == "other_families"]
    assert families and "linear" in families[0]["models"] and len(families[0]["models"]) > 1
    assert families[0]["evidence"]["ref"] == "regression.extremes"


def panel(points: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for store, level in (("a", 10.0), ("b", 100.0), ("c", 1000.0)):
        t = np.arange(points)
        y = level * (1 + 0.2 * np.sin(2 * np.pi * t / 7) + 0.001 * t)
        y = y + rng.normal(scale=0.03 * level, size=points)
        dates = pd.date_range("2023-01-01", periods=points, freq="D").strftime("%Y-%m-%d")
        parts.append(pd.DataFrame({"date": dates, "store": store, "sales": y}))
    return pd.concat(parts, ignore_index=True)


@pytest.mark.anyio
async def test_forecast_errors_by_horizon_step_and_by_series(
    settings: Settings, tmp_path: Path
) -> None:
    frame = panel(points=130)
    dates = pd.to_datetime(frame["date"])
    cut = pd.Timestamp("2023-01-01") + pd.Timedelta(days=119)
    frame[dates <= cut].to_csv(tmp_path / "history.csv", index=False)
    future = frame[dates > cut].reset_index(drop=True)
    future.to_csv(tmp_path / "future.csv", index=False)
    async with analysis_client(settings) as client:
        job = await train(
            client,
            tmp_path / "history.csv",
            target="sales",
            task="forecast",
            time_column="date",
            group_column="store",
            horizon=10,
        )
        result = payload(
            await client.call_tool(
                "analyze_model", {"model": job["model_id"], "dataset": str(tmp_path / "future.csv")}
            )
        )
    detail = result["forecast"]
    assert result["task"] == "forecast" and result["rows"] == 30
    assert [h["step"] for h in detail["by_horizon"]] == list(range(1, 11))
    assert all(h["rows"] == 3 and h["scaled_mae"] is not None for h in detail["by_horizon"])
    assert detail["series_column"] == "store"
    assert sorted(s["series"] for s in detail["by_series"]) == ["a", "b", "c"]
    scaled = [s["scaled_mae"] for s in detail["by_series"]]
    assert scaled == sorted(scaled, reverse=True) and max(scaled) < 0.2
    assert detail["growth"] is not None
    assert {p["name"] for p in result["plots"]} == {"horizon", "series"}
    for plot in result["plots"]:
        assert Path(plot["path"]).read_bytes()[:8] == PNG

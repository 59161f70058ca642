"""Forecasting: one series or a panel of several, the search, the seasonal-naive yardstick."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from conftest import connect, error_text, payload, train_until_done
from report_fixtures import run_isolated

from mltrainer.state.errors import InternalError, InvalidInput
from mltrainer.state.masking import Masker
from mltrainer.state.settings import Settings
from mltrainer.tools.training import plots, standalone
from mltrainer.tools.training.automl import fit_automl
from mltrainer.tools.training.engine.custom import ForecastModel, make_lag_features
from mltrainer.tools.training.engine.forecast_data import season_length
from mltrainer.tools.training.model import ModelMeta, load_model, save_model
from mltrainer.tools.training.progress import NullReporter, TrainingCancelled
from mltrainer.tools.training.request import TrainRequest
from mltrainer.tools.training.results import AutoMLResult
from mltrainer.tools.training.trusted import checked_types

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command

# Three stores with levels a decade apart and different weekly patterns; store "c" is shorter
# and ends earlier, so "beyond the last date" differs per series.
STORES = {"a": (10.0, 2.0, 160), "b": (100.0, 25.0, 160), "c": (1000.0, 0.0, 130)}


def request(**fields: object) -> TrainRequest:
    return TrainRequest.model_validate({"dataset": "test", "time_budget_s": 5, **fields})


def panel_frame(
    stores: dict[str, tuple[float, float, int]] = STORES, seed: int = 0
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for store, (level, amplitude, points) in stores.items():
        t = np.arange(points)
        weekly = amplitude * np.sin(2 * np.pi * t / 7 + len(store))
        y = level + weekly + 0.002 * level * t + rng.normal(scale=0.02 * level, size=points)
        dates = pd.date_range("2023-01-01", periods=points, freq="D").strftime("%Y-%m-%d")
        parts.append(pd.DataFrame({"date": dates, "store": store, "sales": y}))
    return pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=seed)


def last_date(store: str) -> pd.Timestamp:
    return pd.Timestamp("2023-01-01") + pd.Timedelta(days=STORES[store][2] - 1)


def single_series(points: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(points)
    y = 20 + 0.05 * t + 4 * np.sin(2 * np.pi * t / 7) + rng.normal(scale=0.4, size=points)
    dates = pd.date_range("2022-01-01", periods=points, freq="D").strftime("%Y-%m-%d")
    return pd.DataFrame({"date": dates, "sales": y})


def decisions(result: AutoMLResult, stage: str) -> list[str]:
    return [f"{d.decision} -- {d.reason}" for d in result.decisions if d.stage == stage]


class StopAfterCandidates(NullReporter):
    """Cancels the search once ``n`` candidates are scored: the same candidates on any machine,
    however busy (their lines read ``... (N-step forecasts)``)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def cancelled(self) -> bool:
        return sum("-step forecasts)" in line for line in self.events) >= self.n


@pytest.fixture(scope="module")
def panel_result() -> AutoMLResult:
    return fit_automl(
        panel_frame(),
        request(
            target="sales",
            task="forecast",
            time_column="date",
            group_column="store",
            time_budget_s=600,
        ),
        StopAfterCandidates(6),
    )


def test_a_single_series_is_forecast_beyond_its_last_date() -> None:
    reporter = StopAfterCandidates(6)
    result = fit_automl(
        single_series(),
        request(target="sales", task="forecast", time_column="date", horizon=14, time_budget_s=600),
        reporter,
    )

    assert result.features == ["date"] and result.metric == "rmse"
    assert result.holdout["rmse"] < 2.0
    assert len(result.leaderboard) == 6 and reporter.published
    values = result.estimator.predict(pd.DataFrame({"date": ["2022-07-20", "2022-07-25"]}))
    assert values.shape == (2,) and 15 < values.mean() < 40
    ahead = result.estimator.forecast(3)
    assert list(ahead.columns) == ["date", "forecast"]
    assert list(ahead["date"].dt.strftime("%Y-%m-%d")) == ["2022-07-20", "2022-07-21", "2022-07-22"]
    assert plots.plots_for_result(result, Masker())["forecast.png"][:4] == b"\x89PNG"


def test_a_panel_keeps_each_series_at_its_own_level(panel_result: AutoMLResult) -> None:
    result = panel_result
    assert result.features == ["date", "store"]
    assert result.plan.validation.kind == "time_series"
    assert any("3 series" in d for d in decisions(result, "forecast"))
    rows = pd.DataFrame(
        {
            "date": [last_date(s) + pd.Timedelta(days=d) for s in STORES for d in (1, 5)],
            "store": [s for s in STORES for _ in (1, 5)],
        }
    )
    predicted = result.estimator.predict(rows)
    for store, value in zip(rows["store"], predicted, strict=True):
        level, amplitude, points = STORES[store]
        expected = level * (1 + 0.002 * points)
        assert abs(value - expected) < 0.15 * expected + amplitude, (store, value)
    inside = result.estimator.predict(pd.DataFrame({"date": ["2023-02-01"], "store": ["b"]}))
    assert 60 < inside[0] < 150  # a one-step fitted value inside b's history

    ahead = result.estimator.forecast(2)
    assert list(ahead.columns) == ["date", "store", "forecast"]
    first = ahead.groupby("store")["date"].min()
    assert {s: first[s] for s in STORES} == {s: last_date(s) + pd.Timedelta(days=1) for s in STORES}


def test_an_unknown_series_id_names_the_known_ones(panel_result: AutoMLResult) -> None:
    with pytest.raises(ValueError, match=r"unknown series id.*'zz'.*the model knows: a, b, c"):
        panel_result.estimator.predict(pd.DataFrame({"date": ["2023-09-01"], "store": ["zz"]}))
    with pytest.raises(ValueError, match="series column 'store'"):
        panel_result.estimator.predict(pd.DataFrame({"date": ["2023-09-01"]}))


def test_the_seasonal_naive_yardstick_is_scored_and_compared(panel_result: AutoMLResult) -> None:
    naive = [e for e in panel_result.leaderboard if e.family == "seasonal_naive"]
    assert len(naive) == 1 and naive[0].params == {"season": 7}
    assert "seasonal_naive_rmse" in panel_result.holdout
    (said,) = decisions(panel_result, "baseline")
    assert "seasonal naive (season 7)" in said and "%" in said


def test_a_pure_seasonal_series_keeps_seasonal_naive_as_the_model() -> None:
    pattern = [5.0, 9.0, 4.0, 12.0, 7.0, 3.0, 8.0]
    dates = pd.date_range("2024-01-01", periods=84, freq="D")
    frame = pd.DataFrame({"day": dates, "visits": pattern * 12})
    result = fit_automl(
        frame, request(target="visits", task="forecast", time_column="day"), NullReporter()
    )

    assert result.model_name == "seasonal_naive"
    assert result.holdout["rmse"] == pytest.approx(0.0, abs=1e-9)
    assert any("seasonal naive is the model" in d for d in decisions(result, "baseline"))
    np.testing.assert_allclose(result.estimator.forecast(14)["forecast"], pattern * 2)


class CancelAfterFirstModel(NullReporter):
    def cancelled(self) -> bool:
        return bool(self.published)


def test_a_cancelled_search_keeps_the_first_model() -> None:
    reporter = CancelAfterFirstModel()
    result = fit_automl(
        single_series(points=120),
        request(target="sales", task="forecast", time_column="date"),
        reporter,
    )
    assert [e.name for e in result.leaderboard] == ["seasonal_naive"]
    assert result.model_name == "seasonal_naive" and len(reporter.published) == 1
    assert any("cancelled" in d for d in decisions(result, "search"))
    assert result.search_stopped == "cancelled"
    assert np.isfinite(result.estimator.forecast(3)["forecast"]).all()


class CancelledFromTheStart(NullReporter):
    def cancelled(self) -> bool:
        return True


def test_a_forecast_cancelled_before_its_first_candidate_ends_cancelled() -> None:
    """It ended in ``AssertionError`` (an internal error) instead of a cancellation."""
    reporter = CancelledFromTheStart()
    with pytest.raises(TrainingCancelled):
        fit_automl(
            single_series(points=120),
            request(target="sales", task="forecast", time_column="date"),
            reporter,
        )
    assert reporter.published == []


def test_series_too_short_are_dropped_and_none_left_is_an_error() -> None:
    stores = {"a": (10.0, 2.0, 80), "b": (50.0, 5.0, 80), "tiny": (7.0, 1.0, 12)}
    result = fit_automl(
        panel_frame(stores),
        request(target="sales", task="forecast", time_column="date", group_column="store"),
        NullReporter(),
    )
    assert any("drop 1 series" in d and "tiny" in d for d in decisions(result, "forecast"))
    assert result.estimator.series_ids == ["a", "b"]

    with pytest.raises(InvalidInput, match="forecasting needs 20"):
        fit_automl(
            panel_frame({"x": (1.0, 0.0, 10), "y": (2.0, 0.0, 15)}),
            request(target="sales", task="forecast", time_column="date", group_column="store"),
            NullReporter(),
        )


def test_without_group_column_the_averaging_decision_names_the_series_column() -> None:
    result = fit_automl(
        panel_frame(),
        request(target="sales", task="forecast", time_column="date"),
        NullReporter(),
    )
    said = " ".join(decisions(result, "forecast"))
    assert "average rows that share a timestamp" in said
    assert "group_column='store'" in said


def test_season_lengths_follow_the_frequency() -> None:
    expected = {"D": 7, "h": 24, "W-SUN": 52, "MS": 12, "ME": 12, "QE-DEC": 4, "YE-DEC": 1}
    assert {f: season_length(f) for f in expected} == expected
    assert season_length(None) == 1 and season_length("2D") == 1


def test_a_panel_model_round_trips_through_skops_and_the_standalone_script(
    panel_result: AutoMLResult, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    meta = ModelMeta(
        model_id="m1",
        task="forecast",
        target="sales",
        features=panel_result.features,
        metric="rmse",
    )
    saved = save_model(folder, panel_result.estimator, meta, Masker())
    (folder / "predict.py").write_text(standalone.predict_script(saved.file_sha256))
    rows = pd.DataFrame(
        {
            "date": ["2023-06-20", "2023-05-20", "2023-02-10", "2023-06-25"],
            "store": ["a", "c", "b", "b"],
            "ignored": [1, 2, 3, 4],
        }
    )
    expected = panel_result.estimator.predict(rows[["date", "store"]])

    loaded = load_model(folder, sha256=saved.file_sha256)
    np.testing.assert_allclose(loaded.predict_frame(rows)["prediction"], expected, rtol=1e-9)

    rows.to_csv(tmp_path / "in.csv", index=False)
    completed = run_isolated(folder / "predict.py", "in.csv", "out.csv", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(pd.read_csv(tmp_path / "out.csv")["prediction"], expected, rtol=1e-9)


def test_a_model_saved_before_panels_still_loads_and_predicts(tmp_path: Path) -> None:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    frame = single_series(points=60)
    times = pd.to_datetime(frame["date"])
    values = frame["sales"].to_numpy()
    features = make_lag_features(values, times, [1, 7], [3])
    regressor = make_pipeline(SimpleImputer(), Ridge()).fit(features.iloc[7:], values[7:])
    model = ForecastModel(
        "date", regressor, [1, 7], [3], [t.isoformat() for t in times], list(values), "D"
    )
    for newer in ("series_column", "series_ids", "history_series", "scales"):
        del model.__dict__[newer]  # as an older version of the class saved it
    path = tmp_path / "old.skops"
    skops.io.dump(model, path)

    data = path.read_bytes()
    loaded = skops.io.loads(data, trusted=checked_types(path.name, data=data))
    predicted = loaded.predict(pd.DataFrame({"date": ["2022-03-05", "2022-01-20"]}))
    assert np.isfinite(predicted).all() and 10 < predicted.mean() < 40
    assert list(loaded.forecast(2).columns) == ["date", "forecast"]


def test_a_blend_of_level_and_change_models_survives_save_and_load(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    from mltrainer.tools.training.engine.custom import ChangeRegressor, MeanRegressor

    frame = single_series(points=80)
    times = pd.to_datetime(frame["date"])
    values = frame["sales"].to_numpy()
    features = make_lag_features(values, times, [1, 7], [3])
    blend = MeanRegressor(
        [
            make_pipeline(SimpleImputer(), Ridge()),
            ChangeRegressor(HistGradientBoostingRegressor(max_iter=20)),
        ]
    ).fit(features.iloc[7:], values[7:])
    model = ForecastModel(
        "date", blend, [1, 7], [3], [t.isoformat() for t in times], list(values), "D"
    )
    meta = ModelMeta(model_id="m", task="forecast", target="sales", features=["date"],
                     metric="rmse")  # fmt: skip
    saved = save_model(tmp_path, model, meta, Masker())

    loaded = load_model(tmp_path, sha256=saved.file_sha256)
    rows = pd.DataFrame({"date": ["2022-03-25", "2022-02-10"]})
    np.testing.assert_allclose(loaded.predict_frame(rows)["prediction"], model.predict(rows))
    assert 10 < float(loaded.estimator.forecast(1)["forecast"].iloc[0]) < 40


def test_a_panel_plot_shows_at_most_three_series() -> None:
    stores = {f"s{i}": (10.0 * (i + 1), 1.0, 40 + 5 * i) for i in range(5)}
    result = fit_automl(
        panel_frame(stores),
        request(target="sales", task="forecast", time_column="date", group_column="store"),
        NullReporter(),
    )
    assert result.holdout_frame is not None
    panels = result.holdout_frame.series
    assert [p.label for p in panels] == ["s4", "s3", "s2"]  # the longest series
    assert result.holdout_frame.n_series == 5
    assert plots.plots_for_result(result, Masker())["forecast.png"][:4] == b"\x89PNG"
    with pytest.raises(InternalError, match="no series"):
        plots.forecast_panels_png([], 0, Masker())


@pytest.mark.anyio
async def test_train_and_predict_a_panel_through_the_mcp_server(
    settings: Settings, tmp_path: Path
) -> None:
    data = tmp_path / "sales.csv"
    panel_frame().to_csv(data, index=False)
    future = tmp_path / "future.csv"
    with open(future, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "store"])
        for store in STORES:
            writer.writerow([(last_date(store) + pd.Timedelta(days=3)).date(), store])
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("date,store\n2023-07-01,zz\n")

    async with connect("memory", settings) as client:
        job = payload(
            await train_until_done(
                client,
                {
                    "dataset": str(data),
                    "target": "sales",
                    "task": "forecast",
                    "time_column": "date",
                    "group_column": "store",
                    "horizon": 7,
                    "time_budget_s": 6,
                    "plots": False,
                },
            )
        )
        assert job["status"] == "succeeded", job
        assert job["result"]["features"] == ["date", "store"]
        assert any(e["name"] == "seasonal_naive" for e in job["result"]["leaderboard"])
        out = payload(
            await client.call_tool("predict", {"model": job["model_id"], "dataset": str(future)})
        )
        predictions = pd.read_csv(out["predictions_path"])["prediction"].to_numpy()
        levels = np.array([level * (1 + 0.002 * n) for level, _, n in STORES.values()])
        assert (np.abs(predictions - levels) < 0.3 * levels).all(), predictions

        failed = await client.call_tool(
            "predict", {"model": job["model_id"], "dataset": str(unknown)}
        )
        assert failed.is_error
        message = error_text(failed)
        assert "zz" in message and "unknown series" in message, message


def test_a_forecast_job_cancelled_before_its_first_candidate_ends_cancelled(
    settings: Settings, tmp_path: Path
) -> None:
    """Through the job runner, with the cancel asked for right after planning: the job's code
    raises JobCancelled (the worker records 'cancelled'), never an internal error."""
    from typing import Any

    from mltrainer.state.secrets import SecretVault
    from mltrainer.state.store import Store
    from mltrainer.tools.jobs.context import JobCancelled, JobContext
    from mltrainer.tools.jobs.train import train

    class CancelOncePlanned(JobContext):
        def checkpoint(self, name: str, data: dict[str, Any]) -> None:
            super().checkpoint(name, data)
            if name == "plan":  # as if cancel_job arrived now, before any candidate
                self.store.update_job(self.job.id, cancel_requested=True)

    data = tmp_path / "sales.csv"
    single_series(points=120).to_csv(data, index=False)
    vault = SecretVault(settings.secrets_path)
    store = Store(settings.db_path, vault.masker())
    job_request = request(
        dataset=str(data), target="sales", task="forecast", time_column="date", time_budget_s=30
    )
    job = store.create_job("train", job_request.model_dump(mode="json"))
    assert store.claim_job(job.id, 0)
    ctx = CancelOncePlanned(store, store.get_job(job.id), settings, vault)

    with pytest.raises(JobCancelled):
        train(ctx)
    stages = {stage.name: stage for stage in store.stages(job.id)}
    assert stages["train"].status == "failed" and stages["train"].error == "cancelled"
    assert store.get_job(job.id).result is None  # no model was saved before the cancel

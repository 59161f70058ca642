"""Imbalanced classes, rare classes and skewed targets (issue #14), through a real MCP server:
calibrated probabilities, a threshold chosen out of fold and adjustable at predict time, a
class with two rows kept in training, a transformed-target candidate for a heavy tail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import connect, error_text, payload
from honesty_fixtures import Trained, train_all

from bench import traps
from mltrainer.state.settings import Settings

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command


def on_state_of(trained: Trained, data: Path) -> Settings:
    """Settings for a new server on the state directory that trained the model."""
    assert trained.settings is not None
    return Settings(home=trained.settings.home, data_roots=[data])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    runs = {
        "imbalance": (traps.imbalance(0), {}),
        "rare_class": (traps.rare_class(0), {}),
        "skewed": (traps.skewed(0), {}),
    }
    return train_all(tmp_path_factory.mktemp("imbalance"), runs)


def test_a_threshold_is_chosen_out_of_fold_and_used_for_the_labels(trained: dict) -> None:
    t = trained["imbalance"]
    result = t.result
    chosen = [d for d in result["decisions"] if d["stage"] == "decision"]
    assert (
        chosen
        and chosen[0]["decision"].startswith("threshold ")
        and "P(yes)" in chosen[0]["decision"]
    )
    assert "rarest class" in chosen[0]["reason"] and "out-of-fold f1" in chosen[0]["reason"]
    assert 0 < result["threshold"] < 0.5
    assert t.prediction["threshold"] == result["threshold"]
    predicted = t.predictions["prediction"] == "yes"
    assert predicted.sum() > 0  # argmax alone predicts (almost) no positive at 2%
    proba = t.predictions["proba_yes"]
    assert (predicted == (proba >= result["threshold"])).all()
    assert t.fresh > 0.1  # F1 on 20,000 fresh rows
    assert abs(result["holdout"]["f1"] - t.fresh) <= 0.15


def test_probabilities_are_calibrated_on_fresh_rows(trained: dict) -> None:
    t = trained["imbalance"]
    predicted, actual = traps.top_decile(t.trap, t.predictions)
    assert abs(predicted - actual) <= 0.05, (predicted, actual)
    assert t.result["calibration"] is None or "out-of-fold" in t.result["calibration"]


@pytest.mark.anyio
async def test_predict_takes_another_threshold(trained: dict, tmp_path: Path) -> None:
    """A new server on the same state: the model and its threshold are read from disk."""
    t = trained["imbalance"]
    fresh = tmp_path / "fresh.csv"
    t.trap.fresh_inputs().head(2000).to_csv(fresh, index=False)
    async with connect("memory", on_state_of(t, tmp_path)) as client:
        strict = payload(
            await client.call_tool(
                "predict", {"model": t.job["model_id"], "dataset": str(fresh), "threshold": 0.9}
            )
        )
        lenient = payload(
            await client.call_tool(
                "predict", {"model": t.job["model_id"], "dataset": str(fresh), "threshold": 0.01}
            )
        )
        assert strict["threshold"] == 0.9 and lenient["threshold"] == 0.01
        yes = [
            (pd.read_csv(p["predictions_path"])["prediction"] == "yes").sum()
            for p in (strict, lenient)
        ]
        assert yes[0] < yes[1]
        for bad in (0, 1.5):
            refused = await client.call_tool(
                "predict", {"model": t.job["model_id"], "dataset": str(fresh), "threshold": bad}
            )
            assert refused.is_error


def test_a_class_with_two_rows_is_kept_in_training_and_said(trained: dict) -> None:
    t = trained["rare_class"]
    result = t.result
    rare = [d for d in result["decisions"] if "rare class" in d["decision"]]
    assert rare and "'extreme' (2 rows)" in rare[0]["reason"]
    assert t.headline("'extreme' (2)")
    assert "proba_extreme" in t.predictions.columns  # the model knows the class
    dropped = [d for d in result["decisions"] if d["decision"].startswith("drop ")]
    assert not [d for d in dropped if d["stage"] == "search"], dropped
    families = {row["family"] for row in result["leaderboard"]}
    assert "hist_gradient_boosting" in families
    assert abs(t.job["score"] - t.fresh) <= 0.1  # accuracy, reported vs fresh


@pytest.mark.anyio
async def test_a_threshold_on_a_model_with_more_classes_is_refused(
    trained: dict, tmp_path: Path
) -> None:
    t = trained["rare_class"]
    rows = tmp_path / "rows.csv"
    t.trap.fresh_inputs().head(5).to_csv(rows, index=False)
    async with connect("memory", on_state_of(t, tmp_path)) as client:
        refused = await client.call_tool(
            "predict", {"model": t.job["model_id"], "dataset": str(rows), "threshold": 0.3}
        )
        assert "two-class models" in error_text(refused)


def test_the_baseline_decision_names_the_family_that_made_it(trained: dict) -> None:
    for t in trained.values():
        baseline = t.decisions("baseline")
        assert baseline and baseline[0] in ("hist_gradient_boosting", "linear")


def test_a_heavy_tailed_target_gets_a_transformed_target_candidate(trained: dict) -> None:
    t = trained["skewed"]
    result = t.result
    assert t.headline("heavy-tailed", "Yeo-Johnson")
    assert any("Yeo-Johnson" in d for d in t.decisions("target"))
    transformed = [r for r in result["leaderboard"] if r["params"].get("target_transform")]
    assert transformed and all(np.isfinite(r["cv_mean"]) for r in transformed)
    assert np.isfinite(t.predictions["prediction"]).all()
    assert abs(t.job["score"] - t.fresh) <= 0.1

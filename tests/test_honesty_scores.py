"""Honest numbers (issue #14): what train_model reports holds on fresh rows from the same
generator. Trained through a real MCP server on the traps of bench/traps.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from honesty_fixtures import Trained, train_all

from bench import traps

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    runs = {
        # 2,500 held-out rows: the score's own noise (its standard error) is about 0.012
        "null": (traps.null(0, n=12500), {}),
        "drift": (traps.drift(0), {}),
        "importance": (traps.noise_importance(0), {}),
    }
    return train_all(tmp_path_factory.mktemp("scores"), runs)


def kinds(prediction: dict) -> set[str]:
    return {w["kind"] for w in prediction["warnings"]}


@pytest.mark.parametrize("name", ["null", "drift", "importance"])
def test_score_is_the_held_out_score_of_the_model_fitted_on_training_rows(
    trained: dict[str, Trained], name: str
) -> None:
    t = trained[name]
    result = t.result
    assert result["score_source"] == "holdout"
    assert t.job["score"] == result["score"] == result["holdout"][t.job["metric"]]
    assert "held-out" in result["selection"] and "cv_mean" in result["selection"]
    assert result["cv_mean"] is not None and result["cv_std"] is not None
    refit = [d["decision"] for d in result["decisions"] if d["stage"] == "refit"]
    assert refit and (result["refit"] == (refit[-1] == "refit on all labelled rows"))


def test_on_pure_noise_the_score_is_chance_and_so_are_fresh_rows(trained: dict) -> None:
    t = trained["null"]
    assert abs(t.job["score"] - 0.5) <= 0.03, t.job["score"]
    assert abs(t.fresh - 0.5) <= 0.03, t.fresh


def test_a_drifting_target_is_validated_in_time_order_and_its_score_holds_later(
    trained: dict,
) -> None:
    t = trained["drift"]
    assert "time-ordered on date" in t.decisions("validation")
    why = next(
        d["reason"] for d in t.result["decisions"] if d["decision"] == "time-ordered on date"
    )
    assert "timestamp alone predicts the target with R²" in why and "calendar" in why
    features = t.decisions("features")
    assert any("calendar" in d and "not the raw timestamp" in d for d in features), features
    assert any("elapsed days for linear models; trees try them" in d for d in features), features
    assert t.headline("drifts along 'date'")
    # the reported holdout (the latest dates) against the next 200 days
    assert abs(t.job["score"] - t.fresh) <= 0.2, (t.job["score"], t.fresh)
    assert "out_of_range" in kinds(t.prediction)  # those dates are beyond the training range


def test_with_a_time_axis_every_tree_family_tries_elapsed_time_early() -> None:
    """A tree reads a later date like the latest it saw: elapsed time is a variant for trees
    (second in their portfolio), always on for the linear family, never without a time axis."""
    from mltrainer.tools.training.engine import families as fam

    timed = fam.FitContext(task="regression", n_classes=0, n_rows=500, seed=0, time_axis=True)
    for name in fam.ELAPSED:
        configs = fam.portfolio(name, timed)
        assert configs[1] == {**configs[0], "elapsed": True}, name
        assert "elapsed" in fam.search_space(name, timed)
        assert "elapsed" not in fam.build_model(name, configs[1], timed).get_params()
    assert "elapsed" not in fam.portfolio("linear", timed)[0]  # the linear family always has it
    untimed = fam.FitContext(task="regression", n_classes=0, n_rows=500, seed=0)
    assert all("elapsed" not in c for c in fam.portfolio("hist_gradient_boosting", untimed))


def test_noise_features_get_no_importance_on_held_out_rows(trained: dict) -> None:
    t = trained["importance"]
    entries = {e["name"]: e for e in t.result["importance"]}
    assert set(entries) == {"signal1", "signal2", "noise1", "noise2", "noise3"}
    for name in ("noise1", "noise2", "noise3"):
        assert abs(entries[name]["mean"]) <= 0.02, entries[name]
    assert entries["signal1"]["mean"] > 0.05 and entries["signal2"]["mean"] > 0.02
    assert all(e["repeats"] >= 1 and e["std"] >= 0 for e in entries.values())  # as time allows
    scope = t.decisions("importance")
    assert scope and "held-out rows" in scope[0]
    pairs = dict(map(tuple, t.result["feature_importance"]))
    assert pairs["signal1"] == entries["signal1"]["mean"]


def test_importance_repeats_every_feature_and_reports_the_spread() -> None:
    import time

    import pandas as pd

    from mltrainer.tools.training.engine.importance import REPEATS, permutation_importance

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"signal": rng.normal(size=300), "noise": rng.normal(size=300)})
    y = X["signal"].to_numpy() + rng.normal(scale=0.1, size=300)

    def r2(frame: pd.DataFrame, truth: np.ndarray) -> float:
        return 1 - float(
            np.sum((truth - frame["signal"]) ** 2) / np.sum((truth - truth.mean()) ** 2)
        )

    found, measured = permutation_importance(
        r2, X, y, ["noise", "signal"], 0, time.monotonic() + 60
    )
    assert measured == 2 and [e.name for e in found] == ["signal", "noise"]
    assert all(e.repeats == REPEATS for e in found)
    assert found[0].mean > 1.5 and found[0].std > 0 and found[1].mean == 0.0


def test_importance_started_past_its_deadline_still_measures_every_feature_once() -> None:
    """Regression: under CPU load the end of a run left no time and the importance was empty."""
    import time

    import pandas as pd

    from mltrainer.tools.training.engine.importance import permutation_importance

    rng = np.random.default_rng(1)
    X = pd.DataFrame({f"x{i}": rng.normal(size=400) for i in range(5)})
    y = X["x0"].to_numpy()

    def negative_error(frame: pd.DataFrame, truth: np.ndarray) -> float:
        return -float(np.mean(np.abs(truth - frame["x0"])))

    found, measured = permutation_importance(
        negative_error, X, y, list(X.columns), 0, time.monotonic() - 1
    )
    assert measured == 5 and found[0].name == "x0" and found[0].mean > 0.5
    assert all(e.repeats == 1 for e in found)  # the first pass only: no time for more


def test_early_stopping_rows_come_from_the_rows_being_fitted_only() -> None:
    from mltrainer.tools.training.engine.fitting import inner_split

    y = np.array([0, 1] * 100 + [2])  # class 2 has a single row
    fit, stop = inner_split(y, classification=True, ordered=False, seed=0) or ((), ())
    assert len(stop) == 30 and set(fit).isdisjoint(stop)  # 15% under 1,000 rows
    assert set(fit) | set(stop) == set(range(len(y)))  # positions within these rows, all of them
    assert 200 in fit and set(y[stop]) <= set(y[fit])
    fit, stop = inner_split(np.arange(100.0), classification=False, ordered=True, seed=0) or (
        (),
        (),
    )
    assert list(stop) == list(range(85, 100))  # the latest rows when they are in time order
    assert inner_split(np.arange(10.0), classification=False, ordered=False, seed=0) is None


def test_blend_weights_are_judged_on_rows_they_were_not_chosen_on() -> None:
    """On candidates that are pure noise, the greedy blend scores itself above chance; the
    nested cross-fitted blend does not."""
    from sklearn.metrics import roc_auc_score

    from mltrainer.tools.training.engine.ensemble import cross_fitted, greedy_selection

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    oofs = [rng.random(600) for _ in range(12)]
    splits = [
        (np.setdiff1d(np.arange(600), part), part)
        for part in np.array_split(rng.permutation(600), 5)
    ]
    everywhere = np.ones(600, dtype=bool)

    def auc(pred: np.ndarray, rows: np.ndarray = everywhere) -> float:
        return float(roc_auc_score(y[rows], pred[rows]))

    _, in_sample = greedy_selection(oofs, auc)
    nested, single = cross_fitted(oofs, auc, splits, everywhere)
    assert in_sample > 0.53
    assert abs(auc(nested) - 0.5) < 0.04 and abs(auc(single) - 0.5) < 0.04


def test_the_traps_script_prints_its_table(tmp_path: Path) -> None:
    records = [
        {"trap": "null", "metric": "roc_auc", "reported": 0.5, "cv_mean": 0.51, "fresh": 0.49},
        {"trap": "odd_rows", "metric": "roc_auc", "predict_warnings": ["mostly_missing"]},
    ]
    text = traps.table(records)
    assert "| null | roc_auc | 0.500 | 0.510 | 0.490 | 0.010 |" in text
    assert "predict warnings: mostly_missing" in text

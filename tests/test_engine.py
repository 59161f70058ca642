"""The AutoML engine end to end, on small generated data, with short budgets."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.training.automl import fit_automl
from mltrainer.tools.training.engine.custom import trusted_types
from mltrainer.tools.training.reporting import NullReporter
from mltrainer.tools.training.request import TrainRequest
from tests.engine_fixtures import (
    RecordingReporter,
    mixed_classification,
    regression_frame,
    series_frame,
    text_frame,
)


def request(**fields: object) -> TrainRequest:
    return TrainRequest.model_validate({"dataset": "test", "time_budget_s": 6, **fields})


def test_binary_end_to_end_reports_everything_and_predicts_original_labels() -> None:
    frame = mixed_classification(rows=400)
    reporter = RecordingReporter()
    result = fit_automl(frame, request(target="label", positive_class="yes"), reporter)

    assert result.task == "binary"
    assert result.metric == "roc_auc" and result.greater_is_better
    assert result.classes == ["no", "yes"] and result.positive_class == "yes"
    assert set(result.features) == {"x1", "x2", "color", "city", "day"}
    assert {"roc_auc", "accuracy", "balanced_accuracy", "f1", "log_loss"} <= set(result.holdout)
    assert result.holdout["roc_auc"] > 0.8
    assert result.cv_mean is not None and result.cv_std is not None
    assert result.leaderboard and all(e.fit_time_s >= 0 for e in result.leaderboard)
    assert sum(e.weight for e in result.leaderboard) == pytest.approx(1.0)
    assert result.feature_importance and result.feature_importance[0][0] in {"x1", "x2"}
    assert reporter.publish_times and reporter.publish_times[0] < 10
    assert {"name", "metric", "score", "task"} <= set(reporter.published[0][1])
    X = frame[result.features].head(20)
    assert set(result.estimator.predict(X)) <= {"yes", "no"}
    proba = result.estimator.predict_proba(X)
    assert proba.shape == (20, 2) and np.allclose(proba.sum(axis=1), 1.0)
    held = result.holdout_frame
    assert held is not None and len(held["X_test"]) == len(held["y_test"]) == len(held["proba"])
    dumped = result.model_dump(mode="json")
    assert "estimator" not in dumped and "holdout_frame" not in dumped
    assert dumped["library_versions"]["scikit-learn"]


def test_multiclass_with_strings_and_missing_values() -> None:
    frame = mixed_classification(rows=450, classes=3)
    result = fit_automl(frame, request(target="label", metric="accuracy"), NullReporter())

    assert result.task == "multiclass" and result.metric == "accuracy"
    assert result.classes == ["c0", "c1", "c2"]
    assert result.holdout["accuracy"] > 0.5
    assert result.estimator.predict_proba(frame[result.features].head(5)).shape == (5, 3)


def test_regression() -> None:
    frame = regression_frame(rows=400)
    result = fit_automl(frame, request(target="y"), NullReporter())

    assert result.task == "regression" and result.metric == "r2"
    assert {"rmse", "mae", "r2"} <= set(result.holdout)
    assert result.holdout["r2"] > 0.7
    assert result.classes == []
    preds = result.estimator.predict(frame[result.features].head(10))
    assert preds.dtype.kind == "f" and len(preds) == 10


def test_text_classification_uses_the_free_text_column() -> None:
    frame = text_frame(rows=300)
    result = fit_automl(
        frame, request(target="sentiment", task="text_classification"), NullReporter()
    )

    assert result.plan.columns[0].kind == "text"
    assert result.holdout["accuracy"] > 0.85
    new = pd.DataFrame({"review": ["it was great and lovely", "awful broken product"]})
    assert list(result.estimator.predict(new)) == ["pos", "neg"]


def test_forecast_predicts_beyond_the_last_date() -> None:
    frame = series_frame(points=200)
    result = fit_automl(
        frame,
        request(target="sales", task="forecast", time_column="date", horizon=14),
        NullReporter(),
    )

    assert result.task == "forecast" and result.metric == "rmse"
    assert result.holdout["rmse"] < 2.0
    future = pd.DataFrame({"date": ["2022-07-20", "2022-07-25"]})  # after 2022-07-19
    values = result.estimator.predict(future)
    assert values.shape == (2,) and np.isfinite(values).all()
    assert 15 < values.mean() < 40
    ahead = result.estimator.forecast(3)
    assert list(ahead["date"].dt.strftime("%Y-%m-%d")) == ["2022-07-20", "2022-07-21", "2022-07-22"]


def test_clustering_picks_k_by_silhouette_and_assigns_clusters() -> None:
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n_samples=300, centers=4, cluster_std=0.6, random_state=0)
    frame = pd.DataFrame(X, columns=["u", "v"])
    result = fit_automl(frame, request(task="clustering"), NullReporter())

    assert result.task == "clustering" and result.metric == "silhouette"
    assert result.holdout["n_clusters"] == 4
    assert set(result.estimator.predict(frame.head(50))) <= set(range(4))


def test_identifier_leaky_and_constant_columns_are_dropped_and_reported() -> None:
    frame = mixed_classification(rows=300)
    frame["row_id"] = np.arange(len(frame))
    frame["constant"] = 7
    frame["leak"] = frame["label"].map({"yes": "Y", "no": "N"})
    frame["flagged"] = np.random.default_rng(0).normal(size=len(frame))
    from tests.engine_fixtures import Warning_

    result = fit_automl(
        frame,
        request(target="label"),
        NullReporter(),
        warnings=[Warning_("leakage", "flagged"), Warning_("missing", "x2")],
    )

    dropped = {d.name: d.reason for d in result.dropped_columns}
    assert {"row_id", "constant", "leak", "flagged"} <= set(dropped)
    assert "identifier" in dropped["row_id"] and "leak" in dropped["leak"]
    assert "x2" in result.features  # a warning that is not a reason to drop
    assert not set(dropped) & set(result.features)
    assert any(d.stage == "columns" for d in result.decisions)


def test_same_seed_gives_the_same_candidates_and_scores() -> None:
    frame = mixed_classification(rows=300)
    runs = [
        fit_automl(
            frame, request(target="label", seed=3, models=["linear", "xgboost"]), NullReporter()
        )
        for _ in range(2)
    ]
    first, second = ({e.name: e.cv_mean for e in r.leaderboard} for r in runs)
    common = set(first) & set(second)
    assert len(common) >= 2
    assert all(first[name] == second[name] for name in common)


def test_the_time_budget_is_kept() -> None:
    frame = mixed_classification(rows=3000, seed=1)
    started = time.monotonic()
    fit_automl(frame, request(target="label", time_budget_s=5), NullReporter())
    assert time.monotonic() - started < 5 * 1.1 + 3.0  # tolerant: shared CI machines


def test_a_cancelled_job_keeps_its_published_model() -> None:
    frame = mixed_classification(rows=400)
    reporter = RecordingReporter(cancel_after_publish=True)
    started = time.monotonic()
    result = fit_automl(frame, request(target="label", time_budget_s=30), reporter)

    assert time.monotonic() - started < 15
    assert reporter.published
    estimator, summary = reporter.published[0]
    assert "baseline" in summary["name"]
    assert len(estimator.predict(frame[result.features].head(3))) == 3


def test_models_survive_a_skops_round_trip(tmp_path: Path) -> None:
    frame = mixed_classification(rows=300)
    result = fit_automl(
        frame, request(target="label", models=["xgboost", "linear"]), NullReporter()
    )
    path = tmp_path / "model.skops"
    skops.io.dump(result.estimator, path)

    untrusted = skops.io.get_untrusted_types(file=path)
    assert all(
        t.startswith(("mltrainer.tools.training.engine.custom.", "sklearn.", "numpy."))
        for t in untrusted
    )
    loaded = skops.io.load(path, trusted=trusted_types(path))
    X = frame[result.features].head(30)
    np.testing.assert_allclose(loaded.predict_proba(X), result.estimator.predict_proba(X))


def test_a_forecast_model_survives_a_skops_round_trip(tmp_path: Path) -> None:
    result = fit_automl(
        series_frame(points=120),
        request(target="sales", task="forecast", time_column="date", horizon=7),
        NullReporter(),
    )
    path = tmp_path / "model.skops"
    skops.io.dump(result.estimator, path)
    loaded = skops.io.load(path, trusted=trusted_types(path))
    future = pd.DataFrame({"date": ["2022-05-05"]})
    np.testing.assert_allclose(loaded.predict(future), result.estimator.predict(future))


def test_a_resumed_job_skips_the_search() -> None:
    frame = mixed_classification(rows=300)
    reporter = RecordingReporter()
    first = fit_automl(frame, request(target="label"), reporter)
    assert reporter.restore("plan") and reporter.restore("ensemble")

    second = fit_automl(frame, request(target="label"), reporter)

    stages = [d.stage for d in second.decisions]
    assert "resume" in stages
    chosen = {e.name.split("#")[0] for e in first.leaderboard if e.weight > 0}
    assert {e.family for e in second.leaderboard} <= chosen


def test_bad_inputs_say_what_to_do() -> None:
    frame = mixed_classification(rows=100)
    with pytest.raises(InvalidInput, match="not in the dataset"):
        fit_automl(frame, request(target="nope"), NullReporter())
    with pytest.raises(InvalidInput, match="Unknown model family"):
        fit_automl(frame, request(target="label", models=["catboost9"]), NullReporter())
    with pytest.raises(InvalidInput, match="does not apply"):
        fit_automl(frame, request(target="label", metric="rmse"), NullReporter())
    with pytest.raises(InvalidInput, match="single class"):
        fit_automl(frame.assign(label="x"), request(target="label"), NullReporter())
    with pytest.raises(InvalidInput, match="time column"):
        fit_automl(series_frame(), request(target="sales", task="forecast"), NullReporter())
    with pytest.raises(InvalidInput, match="no rows"):
        fit_automl(frame.head(0), request(target="label"), NullReporter())


def test_numeric_class_labels_keep_one_order_everywhere() -> None:
    frame = mixed_classification(rows=300)
    frame["label"] = frame["label"].map({"no": 10, "yes": 2})
    reporter = RecordingReporter()
    result = fit_automl(frame, request(target="label", models=["linear"]), reporter)

    assert result.classes == ["2", "10"] == result.plan.classes
    assert reporter.published[0][1]["classes"] == ["2", "10"]
    assert list(result.estimator.classes_) == [2, 10]
    assert set(result.estimator.predict(frame[result.features])) <= {2, 10}


def test_a_forest_stays_within_its_memory_bound_however_many_rows() -> None:
    from sklearn.datasets import make_classification

    from mltrainer.tools.training.engine import families as fam

    X, y = make_classification(n_samples=6000, n_features=10, n_classes=3, n_informative=6)
    for name in ("random_forest", "extra_trees"):
        ctx = fam.FitContext(task="multiclass", n_classes=3, n_rows=len(y), seed=0)
        model = fam.build_model(name, {"max_features": 0.5, "min_samples_leaf": 1}, ctx)
        fam.fit_model(name, model, X, y, None, None, None)
        nodes = sum(tree.tree_.node_count for tree in model.estimators_)
        assert nodes * (64 + 8 * 3) <= fam.FOREST_BYTES


def test_search_keeps_at_most_one_fitted_model_and_every_out_of_fold_prediction() -> None:
    from mltrainer.tools.training.engine.search import Search
    from mltrainer.tools.training.engine.tabular import _Data, _problem
    from mltrainer.tools.training.planner import build_plan

    frame = mixed_classification(rows=400)
    plan = build_plan(frame, request(target="label", models=["linear", "xgboost"]), [])
    data = _Data(frame, plan)
    problem = _problem(data, plan, data.train)
    search = Search(
        problem, ["linear", "xgboost"], 0, lambda c: None, lambda m: None, lambda: False
    )
    end = time.monotonic() + 4
    search.run(lambda: end)

    assert len(search.candidates) >= 3
    kept = [c for c in search.candidates if c.models]
    assert len(kept) == 1 and len(kept[0].models or []) == 1
    assert kept[0] is search.best
    assert all(c.oof.shape[0] == len(problem.y) for c in search.candidates)


def test_an_xgboost_model_keeps_one_booster_and_saves_its_bytes() -> None:
    import copy

    from mltrainer.tools.training.engine.custom import XGBClassifierModel

    frame = mixed_classification(rows=300)
    X = frame[["x1", "x2"]].to_numpy()
    y = (frame["label"] == "yes").to_numpy().astype(int)
    model = XGBClassifierModel(objective="binary:logistic", n_estimators=20, n_jobs=1)
    model.fit(X, y)
    assert "booster_raw_" not in model.__dict__  # only the lean booster while in memory
    state = model.__getstate__()
    assert isinstance(state["booster_raw_"], bytes) and "_booster" not in state
    clone = copy.deepcopy(model)  # through __getstate__ and __setstate__
    np.testing.assert_allclose(clone.predict_proba(X), model.predict_proba(X))


def test_same_data_settings_and_seed_give_the_same_model_and_scores() -> None:
    """A search that converges (the best score stops improving) ends the same on every run."""
    frame = mixed_classification(rows=300)
    settings = {"target": "label", "time_budget_s": 25, "models": ["linear", "knn"], "seed": 3}

    def run() -> tuple[object, ...]:
        result = fit_automl(frame, request(**settings), NullReporter())
        assert result.search_stopped == "converged", result.decisions[-5:]
        assert any(d.decision == "stopped: converged" for d in result.decisions)
        proba = result.estimator.predict_proba(frame[result.features])
        board = [(e.name, e.params, e.cv_mean, e.weight) for e in result.leaderboard]
        return board, result.cv_mean, result.holdout, proba

    first, second = run(), run()
    assert first[:3] == second[:3]
    assert np.array_equal(first[3], second[3])

"""The AutoML engine end to end, on small generated data, with short budgets."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io

from mltrainer.state.errors import InternalError, InvalidInput
from mltrainer.tools.training.automl import fit_automl
from mltrainer.tools.training.engine.search import Search
from mltrainer.tools.training.engine.tabular_data import TabularData
from mltrainer.tools.training.planner import build_plan
from mltrainer.tools.training.progress import NullReporter
from mltrainer.tools.training.request import TrainRequest
from mltrainer.tools.training.trusted import checked_types
from tests.engine_fixtures import (
    RecordingReporter,
    assert_converges_the_same,
    mixed_classification,
    regression_frame,
    series_frame,
    text_frame,
)


def request(**fields: object) -> TrainRequest:
    return TrainRequest.model_validate({"dataset": "test", "time_budget_s": 6, **fields})


def load_skops(path: Path) -> object:
    """Load a model file the way the server does: its types checked against the allow-list."""
    data = path.read_bytes()
    return skops.io.loads(data, trusted=checked_types(path.name, data=data))


def first_candidate_event(log: list[str]) -> int:
    """The position of the first search candidate's line (``family: metric mean ± std``)."""
    return next(i for i, line in enumerate(log) if line.startswith("event: ") and " ± " in line)


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
    # The baseline is published before the search's first candidate is scored.
    first = reporter.log.index(next(line for line in reporter.log if line.startswith("publish:")))
    assert reporter.log[first].startswith("publish: baseline")
    assert first < first_candidate_event(reporter.log)
    published = reporter.published[0][1]
    assert published.task == "binary" and published.metric == "roc_auc"
    assert published.features == result.features and published.classes == ["no", "yes"]
    assert published.positive_class == "yes" and published.score is not None
    X = frame[result.features].head(20)
    assert set(result.estimator.predict(X)) <= {"yes", "no"}
    proba = result.estimator.predict_proba(X)
    assert proba.shape == (20, 2) and np.allclose(proba.sum(axis=1), 1.0)
    held = result.holdout_frame
    assert held is not None and held.x_test is not None
    assert held.y_test is not None and held.proba is not None
    assert len(held.x_test) == len(held.y_test) == len(held.proba)
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
    from mltrainer.tools.profiling import ProfileWarning
    from mltrainer.tools.profiling.judge import judge

    verdict = judge(frame, "label")
    for kind, column in (("leakage", "flagged"), ("heavy_missing", "x2")):
        warning = ProfileWarning(kind=kind, column=column, severity="high", message=kind)
        verdict.warnings.append(warning)
    result = fit_automl(frame, request(target="label"), NullReporter(), verdict=verdict)

    dropped = {d.name: d.reason for d in result.dropped_columns}
    assert {"row_id", "constant", "leak", "flagged"} <= set(dropped)
    assert "identifier" in dropped["row_id"] and "leak" in dropped["leak"]
    assert "x2" in result.features  # a warning that is not a reason to drop
    assert not set(dropped) & set(result.features)
    assert any(d.stage == "columns" for d in result.decisions)


def test_same_seed_gives_the_same_candidates_and_scores() -> None:
    """The first candidates of two runs with one seed are the same, with the same scores (each
    run stops after four candidates, however fast the machine is)."""
    frame = mixed_classification(rows=300)
    runs = [
        fit_automl(
            frame,
            request(target="label", seed=3, models=["linear", "xgboost"], time_budget_s=120),
            RecordingReporter(cancel_after_candidates=4),
        )
        for _ in range(2)
    ]
    first, second = ({e.name: e.cv_mean for e in r.leaderboard} for r in runs)
    assert len(first) == 4 and first == second


def test_the_time_budget_is_kept() -> None:
    """The budget, not convergence, ends the search, and the engine's own account of the run
    keeps the promise (the budget + 10%; a little more for a machine shared with other work)."""
    frame = mixed_classification(rows=3000, seed=1)
    result = fit_automl(frame, request(target="label", time_budget_s=5), NullReporter())
    assert result.search_stopped == "time"
    assert any(d.decision == "stopped: time" for d in result.decisions)
    assert result.elapsed_s < 5 * 1.1 + 3.0


def test_a_cancelled_job_keeps_its_published_model() -> None:
    frame = mixed_classification(rows=400)
    reporter = RecordingReporter(cancel_after_publish=True)
    result = fit_automl(frame, request(target="label", time_budget_s=30), reporter)

    # It stopped at the cancel: no candidate after the baseline, nothing published after it.
    assert result.search_stopped == "cancelled" and result.leaderboard == []
    assert len(reporter.published) == 1
    estimator, published = reporter.published[0]
    assert "baseline" in published.name
    assert len(estimator.predict(frame[result.features].head(3))) == 3


def test_models_survive_a_skops_round_trip(tmp_path: Path) -> None:
    frame = mixed_classification(rows=300)
    result = fit_automl(
        frame, request(target="label", models=["xgboost", "linear"]), NullReporter()
    )
    path = tmp_path / "model.skops"
    skops.io.dump(result.estimator, path)

    loaded = load_skops(path)
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
    loaded = load_skops(path)
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
    undated = series_frame().drop(columns="date").assign(n=range(200))
    with pytest.raises(InvalidInput, match="time column"):
        fit_automl(undated, request(target="sales", task="forecast"), NullReporter())
    with pytest.raises(InvalidInput, match="no rows"):
        fit_automl(frame.head(0), request(target="label"), NullReporter())


def test_numeric_class_labels_keep_one_order_everywhere() -> None:
    frame = mixed_classification(rows=300)
    frame["label"] = frame["label"].map({"no": 10, "yes": 2})
    reporter = RecordingReporter()
    result = fit_automl(frame, request(target="label", models=["linear"]), reporter)

    assert result.classes == ["2", "10"] == result.plan.classes
    assert reporter.published[0][1].classes == ["2", "10"]
    assert list(result.estimator.classes_) == [2, 10]
    assert set(result.estimator.predict(frame[result.features])) <= {2, 10}


def test_a_forest_stays_within_its_memory_bound_however_many_rows() -> None:
    from sklearn.datasets import make_classification

    from mltrainer.tools.training.engine import families as fam
    from mltrainer.tools.training.engine.fitting import fit_model

    X, y = make_classification(n_samples=6000, n_features=10, n_classes=3, n_informative=6)
    for name in ("random_forest", "extra_trees"):
        ctx = fam.FitContext(task="multiclass", n_classes=3, n_rows=len(y), seed=0)
        model = fam.build_model(name, {"max_features": 0.5, "min_samples_leaf": 1}, ctx)
        fit_model(name, model, X, y, None, None, classification=True)
        nodes = sum(tree.tree_.node_count for tree in model.estimators_)
        assert nodes * (64 + 8 * 3) <= fam.FOREST_BYTES


def searched(candidates: int, classes: int = 2, pool: int | None = None) -> Search:
    """A search of linear and XGBoost candidates on 400 rows, stopped after ``candidates``."""
    frame = mixed_classification(rows=400, classes=classes)
    plan = build_plan(frame, request(target="label", models=["linear", "xgboost"]))
    data = TabularData(frame, plan)
    search = Search(
        data.problem(data.train),
        ["linear", "xgboost"],
        0,
        lambda c: None,
        lambda m: None,
        lambda: len(search.candidates) >= candidates,  # however fast
        pool=pool,
    )
    assert search.run(lambda: time.monotonic() + 3600) == "cancelled"  # never the clock
    return search


def test_search_keeps_at_most_one_fitted_model_and_every_out_of_fold_prediction() -> None:
    search = searched(4)
    assert len(search.candidates) == 4
    kept = [c for c in search.candidates if c.models]
    assert len(kept) == 1 and len(kept[0].models or []) == 1
    assert kept[0] is search.best
    assert all(c.oof is not None and len(c.oof) == len(search.problem.y) for c in search.candidates)


def test_search_releases_the_predictions_of_candidates_that_can_no_longer_be_chosen() -> None:
    """With a pool of two, a candidate two others beat keeps no out-of-fold predictions (rows
    x classes each, a dozen candidates' worth on many-class data), unless it holds the fold
    model; the pool keeps theirs, and the ensemble reads them."""
    search = searched(5, classes=3, pool=2)
    ranked = sorted(search.candidates, key=lambda c: c.utility, reverse=True)
    holder = next(c for c in ranked if c.models)
    for candidate in ranked:
        kept = candidate in ranked[:2] or candidate is holder
        assert (candidate.oof is not None) == kept, (candidate.id, candidate.utility)
    assert all(c.out_of_fold().shape == (len(search.problem.y), 3) for c in ranked[:2])
    released = next(c for c in ranked[2:] if c is not holder)
    with pytest.raises(InternalError, match="released"):
        released.out_of_fold()


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


@pytest.mark.slow
def test_same_data_settings_and_seed_give_the_same_model_and_scores() -> None:
    """A search that converges (the best score stops improving) ends the same on every run."""
    frame = mixed_classification(rows=300)
    # A budget far beyond what convergence needs, so that a busy machine still converges.
    settings = {"target": "label", "time_budget_s": 120, "models": ["linear", "knn"], "seed": 3}

    stopped = ("search", "stopped: converged")
    assert_converges_the_same(frame, request(**settings), stopped)


def test_the_engine_uses_the_cores_the_job_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """All the cores this process may run on (no cap at 2), or fewer if the job manager says."""
    import os

    import psutil

    from mltrainer.tools.machine import CORES_ENV, n_workers

    monkeypatch.delenv(CORES_ENV, raising=False)
    process = psutil.Process()
    mine = len(process.cpu_affinity()) if hasattr(process, "cpu_affinity") else os.cpu_count()
    assert n_workers() == mine
    monkeypatch.setenv(CORES_ENV, "1")
    assert n_workers() == 1
    monkeypatch.setenv(CORES_ENV, "4096")
    assert n_workers() == mine
    for bad in ("0", "two", "-3"):
        monkeypatch.setenv(CORES_ENV, bad)
        with pytest.raises(InvalidInput, match=CORES_ENV):
            n_workers()

"""What the engine holds in memory while it fits (#17).

The promises: numbers and true/false columns reach the models as one float array, never as a
frame of Python objects first; large folds (and forests) are fitted one at a time, each on every
core, so one fold's copies of the data are in memory instead of one per core, and such a fold
scores as it does side by side; a search keeps its out-of-fold probabilities in float32 and the
final fits reuse the frames that hold their rows; predict scores many rows a chunk at a time,
with the same result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mltrainer.tools.machine import (
    ARROW_POOL_ENV,
    CORES_ENV,
    n_workers,
    tune_allocator,
)
from mltrainer.tools.training import model as model_module
from mltrainer.tools.training.engine import fitting, trials
from mltrainer.tools.training.engine.tabular import TabularRun
from mltrainer.tools.training.engine.tabular_data import TabularData
from mltrainer.tools.training.engine.trials import evaluate
from mltrainer.tools.training.model import load_model
from mltrainer.tools.training.planner import build_plan
from mltrainer.tools.training.progress import NullReporter
from tests.engine_fixtures import mixed_classification
from tests.fanout_fixtures import problem_of, request


def numbers_and_flags(rows: int = 20_000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(20)})
    frame["flag"] = rng.random(rows) < 0.3
    frame["count"] = pd.array(rng.integers(0, 9, size=rows), dtype="Int64")
    frame.loc[::7, "count"] = pd.NA
    frame.loc[::5, "x3"] = np.nan
    frame["label"] = np.where(frame["x0"] + frame["flag"] > 0.5, "yes", "no")
    return frame


@pytest.mark.parametrize(
    ("family", "params"), [("hist_gradient_boosting", {}), ("linear", {"C": 1.0})]
)
def test_numbers_and_flags_reach_the_model_as_one_float_array(
    family: str, params: dict[str, float]
) -> None:
    frame = numbers_and_flags()
    plan = build_plan(frame, request(target="label"))
    data = TabularData(frame, plan)
    problem = data.problem(data.train)
    prep, _ = problem.pipeline(family, params)
    X = problem.X
    tracemalloc.start()
    try:
        out = prep.fit_transform(X, problem.y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Numbers pass to the trees as they are, and scaled to a classifier's solver: float32.
    assert out.dtype == np.float32
    if family == "hist_gradient_boosting":
        assert np.isnan(out).sum() == X["x3"].isna().sum() + X["count"].isna().sum()
        # A frame of floats and booleans made into Python objects first took 32 bytes a cell:
        # 8 times this float32 array at least.
        assert peak < 3 * out.nbytes, (peak, out.nbytes)


def test_a_linear_design_is_float32_but_for_regression() -> None:
    """Ridge would cast the target to the columns' type (a target near 1e9 in float32 loses
    its units), so regression keeps float64; a classifier's columns are float32, each kind."""
    frame = mixed_classification(rows=600)
    classified = build_plan(frame, request(target="label"))
    frame["amount"] = 1e9 + 10 * frame["x1"]  # float32's steps are 64 apart at 1e9
    regressed = build_plan(frame.drop(columns=["label"]), request(target="amount"))
    for plan, dtype in ((classified, np.float32), (regressed, np.float64)):
        assert {"categorical", "numeric", "high_cardinality", "datetime"} <= {
            column.kind for column in plan.columns
        }
        data = TabularData(frame, plan)
        problem = data.problem(data.train)
        prep, _ = problem.pipeline("linear", {"C": 1.0})
        out = prep.fit_transform(problem.X, problem.y)
        assert out.dtype == dtype
        assert all(part.dtype == dtype for part in _parts(prep, problem.X))
        pipeline, _ = trials.fit_pipeline(
            problem, "linear", {"C": 1.0}, problem.X, problem.y, None, None
        )
        predicted = fitting.predict(pipeline, problem.X.iloc[:50], dtype == np.float32)
        assert np.isfinite(predicted).all()
    # the regression's predictions keep the target's units (in float32: hundreds off)
    assert np.abs(predicted - problem.y[:50]).max() < 50


def _parts(prep: object, X: pd.DataFrame) -> list[np.ndarray]:
    return [
        transformer.transform(X[columns])
        for name, transformer, columns in prep.transformers_  # type: ignore[attr-defined]
        if name != "remainder"
    ]


@pytest.mark.parametrize("family", ["hist_gradient_boosting", "xgboost", "extra_trees"])
def test_every_kind_of_column_reaches_the_trees_as_float32(family: str) -> None:
    """Codes, numbers, target-encoded and date columns: one float32 array (half a float64
    copy per fold), and the fitted pipeline scores unseen rows."""
    frame = mixed_classification(rows=600)
    plan = build_plan(frame, request(target="label"))
    assert {"categorical", "numeric", "high_cardinality", "datetime"} <= {
        column.kind for column in plan.columns
    }
    data = TabularData(frame, plan)
    problem = data.problem(data.train)
    prep, _ = problem.pipeline(family, {})
    assert prep.fit_transform(problem.X, problem.y).dtype == np.float32
    pipeline, _ = trials.fit_pipeline(problem, family, {}, problem.X, problem.y, None, None)
    proba = pipeline.predict_proba(problem.X.iloc[:50])
    assert proba.shape == (50, 2) and np.isfinite(proba).all()


def test_large_folds_and_forests_run_one_at_a_time_on_every_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    problem = problem_of(rows=300, models=("hist_gradient_boosting", "random_forest"))
    monkeypatch.setenv(CORES_ENV, "2")
    cores = n_workers()
    assert problem.fold_threads("hist_gradient_boosting") == 1  # small: side by side
    assert problem.fold_threads("random_forest") == cores
    monkeypatch.setattr(trials, "SIDE_BY_SIDE_CELLS", 100)  # these folds are now "large"
    assert problem.fold_threads("hist_gradient_boosting") == cores
    monkeypatch.setenv(CORES_ENV, "1")  # a fan-out worker's single core
    assert problem.fold_threads("hist_gradient_boosting") == 1


def test_a_large_fold_scores_as_it_does_side_by_side(monkeypatch: pytest.MonkeyPatch) -> None:
    problem = problem_of(rows=400, models=("linear",))
    params = {"C": 1.0}
    side_by_side = evaluate(problem, "linear", params, 0, time.monotonic() + 120)
    monkeypatch.setattr(trials, "SIDE_BY_SIDE_CELLS", 100)
    monkeypatch.setenv(CORES_ENV, "2")
    assert problem.fold_threads("linear") == min(2, n_workers())
    one_at_a_time = evaluate(problem, "linear", params, 0, time.monotonic() + 120)
    assert side_by_side is not None and one_at_a_time is not None
    assert one_at_a_time.cv_mean == pytest.approx(side_by_side.cv_mean)
    assert np.allclose(one_at_a_time.oof, side_by_side.oof)


def test_predict_scores_rows_in_chunks_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A model's pipeline copies only PREDICT_CHUNK_ROWS rows at a time; the predictions, the
    probabilities and a threshold's decisions are those of one pass over every row."""
    folder = Path(__file__).parent / "fixtures" / "models" / "asfloat_main_7ab8376"
    model = load_model(folder, sha256=None)
    rows = pd.read_csv(folder / "input.csv")
    whole = model.predict_frame(rows, threshold=0.3)
    monkeypatch.setattr(model_module, "PREDICT_CHUNK_ROWS", 3)
    chunked = model.predict_frame(rows, threshold=0.3)
    pd.testing.assert_frame_equal(chunked, whole)
    expected = pd.read_csv(folder / "expected.csv")
    pd.testing.assert_frame_equal(model.predict_frame(rows), expected, check_dtype=False)


READ_AND_FREE = """
import gc, json, sys
import psutil
from mltrainer.tools.profiling import read_table
from mltrainer.tools.machine import release_memory, tune_allocator

if sys.argv[2] == "tuned":
    tune_allocator()
read_table(sys.argv[1], nrows=10)  # the reader's own imports and caches, before the baseline
gc.collect()
release_memory()
before = psutil.Process().memory_info().rss
frame = read_table(sys.argv[1])
size, peak = int(frame.memory_usage(deep=True).sum()), psutil.Process().memory_info().rss
del frame
gc.collect()
release_memory()
after = psutil.Process().memory_info().rss
print(json.dumps({"size": size, "read": peak - before, "kept": after - before}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_tuned_process_gives_back_what_reading_a_table_used(tmp_path: Path) -> None:
    """A train job tunes the allocator before it reads (tools/jobs/train.py): Arrow's read
    buffers then come from the C heap and go back when freed. Untuned, mimalloc and glibc kept
    five times the table after it was gone (148 MB for 29 MB); tuned, 5.5 MB."""
    rng = np.random.default_rng(0)
    rows = 150_000
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(8)})
    frame["city"] = rng.choice([f"city_{i}" for i in range(500)], size=rows)
    frame["id"] = [f"row-{i}" for i in range(rows)]
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)

    def read_and_free(mode: str) -> dict[str, int]:
        env = {k: v for k, v in os.environ.items() if k != ARROW_POOL_ENV}  # as a user's
        done = subprocess.run(
            [sys.executable, "-c", READ_AND_FREE, str(path), mode],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    tuned, untuned = read_and_free("tuned"), read_and_free("untuned")
    assert tuned["kept"] < tuned["size"] / 2, tuned
    assert tuned["read"] < 3 * tuned["size"], tuned
    assert untuned["kept"] > 2 * tuned["kept"] + tuned["size"], (untuned, tuned)


def test_the_tuning_keeps_a_pool_the_user_chose_and_reaches_the_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ARROW_POOL_ENV, "jemalloc")
    tune_allocator()
    assert os.environ[ARROW_POOL_ENV] == "jemalloc"
    monkeypatch.delenv(ARROW_POOL_ENV)
    tune_allocator()
    assert os.environ[ARROW_POOL_ENV] == "system"  # inherited by every process started after
    import pyarrow as pa

    assert pa.default_memory_pool().backend_name == "system"


def test_a_model_is_saved_without_a_copy_of_its_file_in_memory(tmp_path: Path) -> None:
    """skops serialises into one buffer; the file is written from it (``dumps`` returned a
    copy as well: 2.1 times the file at the peak, now 1.2), then checked and hashed from disk."""
    from sklearn.ensemble import RandomForestClassifier

    from mltrainer.state.masking import Masker
    from mltrainer.tools.training.model import ModelMeta, save_model
    from mltrainer.tools.training.trusted import skops_io

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 5))
    y = (X[:, 0] + rng.normal(size=20_000) > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    meta = ModelMeta(model_id="m", task="binary", target="y", features=list("abcde"), metric="auc")
    skops_io()  # its import is not the save's memory
    tracemalloc.start()
    try:
        saved = save_model(tmp_path / "m", forest, meta, Masker())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    file = tmp_path / "m" / "model.skops"
    assert peak < 1.6 * file.stat().st_size, (peak, file.stat().st_size)
    assert sorted(p.name for p in file.parent.iterdir()) == ["meta.json", "model.skops"]
    loaded = load_model(file.parent, sha256=saved.file_sha256)
    assert (loaded.estimator.predict(X[:50]) == forest.predict(X[:50])).all()


def test_a_search_keeps_its_out_of_fold_probabilities_in_float32() -> None:
    """One candidate's out-of-fold probabilities are rows x classes, and a search keeps a dozen
    candidates: half of float64, scored all the same (the search's choices do not change)."""
    frame = mixed_classification(rows=600, classes=3)
    plan = build_plan(frame, request(target="label", models=["linear"]))
    data = TabularData(frame, plan)
    problem = data.problem(data.train)
    candidate = evaluate(problem, "linear", {"C": 1.0}, 0, time.monotonic() + 120)
    assert candidate is not None
    assert candidate.oof.dtype == np.float32 and candidate.oof.shape == (len(problem.y), 3)
    assert problem.oof_utility(candidate.oof) == pytest.approx(candidate.utility, abs=1e-6)


def test_the_final_fits_reuse_the_frames_that_hold_their_rows() -> None:
    """The chosen models are fitted on the search's rows, then on every row: both are frames
    the run holds already, not copies; any other rows are copied, in the order asked."""
    frame = mixed_classification(rows=600)
    plan = build_plan(frame, request(target="label", models=["linear"]))
    run = TabularRun(frame, plan, NullReporter(), time.monotonic())
    assert run.features(run.search_rows) is run.problem.X
    assert run.features(np.arange(len(run.data.y))) is run.data.X
    some = run.data.test[::-1]
    picked = run.features(some)
    assert picked is not run.data.X and len(picked) == len(some)
    assert picked["x1"].tolist() == run.data.X["x1"].to_numpy()[some].tolist()


def coded_rows(rows: int = 6000, columns: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Two leading columns of category codes (missing values, a code the first rows alone
    hold), then numbers; a label that depends on both."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, columns))
    X[:, 0] = rng.integers(0, 30, rows)
    X[:, 1] = rng.integers(0, 5, rows)
    X[::13, 0] = np.nan
    X[:100, 1] = 7
    y = ((X[:, 0] % 3 == 0) + X[:, 3] + rng.normal(size=rows) > 0.8).astype(int)
    return X, y


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_hist_gradient_boosting_takes_category_codes_as_they_are(task: str) -> None:
    """The same trees and predictions as scikit-learn's own estimator, whose encoder renumbers
    the codes: codes the fit never saw (in the stopping rows, or at predict: 31, 300, -1) go
    the way of missing values in both. Its fit copied the rows twice more (to float64, then
    beside the encoded columns); from float64 rows the fit makes no copy of them."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from mltrainer.tools.training.engine.custom import HGBClassifierModel, HGBRegressorModel

    X, y = coded_rows(rows=40_000, columns=40)
    theirs, ours = (
        (HistGradientBoostingClassifier, HGBClassifierModel)
        if task == "classification"
        else (HistGradientBoostingRegressor, HGBRegressorModel)
    )
    target = y if task == "classification" else y + X[:, 2]
    stop = X[36_000:].copy()
    stop[:5, 0] = 31
    unseen = X[:2000].copy()
    unseen[:7, 0], unseen[7:9, 0] = 300, -1
    settings = {
        "max_iter": 20,
        "max_leaf_nodes": 8,  # the histograms it keeps are not the rows' copies
        "categorical_features": [0, 1],
        "random_state": 0,
    }
    fits = []
    for cls in (theirs, ours):
        model = cls(**settings)
        tracemalloc.start()
        try:
            model.fit(X[100:36_000], target[100:36_000], X_val=stop, y_val=target[36_000:])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        predict = model.predict_proba if task == "classification" else model.predict
        fits.append((model, predict(unseen), peak))
    (reference, expected, their_peak), (model, got, our_peak) = fits
    assert model.n_iter_ == reference.n_iter_
    np.testing.assert_array_equal(got, expected)
    rows = X[100:36_000].nbytes
    # theirs: two copies of the rows at once; ours: less than one (bins, gradients, histograms)
    assert their_peak > 1.8 * rows and our_peak < 0.75 * rows, (their_peak, our_peak, rows)


def test_a_category_column_the_codes_do_not_fit_falls_back_to_scikit_learns_encoding() -> None:
    """Codes beyond what a bitset holds (or negative, or fractional) are left to scikit-learn,
    which renumbers them: the model still fits and predicts."""
    from mltrainer.tools.training.engine.custom import HGBClassifierModel

    X, y = coded_rows()
    X[:, 0] = np.where(np.isnan(X[:, 0]), np.nan, X[:, 0] * 1000)  # 30 codes up to 29,000
    model = HGBClassifierModel(max_iter=20, categorical_features=[0, 1], random_state=0)
    model.fit(X, y)
    assert model.known_codes_ is None and model._preprocessor is not None
    assert model.predict_proba(X[:20]).shape == (20, 2)


def test_the_rows_to_stop_on_are_moved_to_the_end_and_fitted_as_views() -> None:
    """A fit on its own array reorders it in place: the rows to fit on, then the rows to stop
    early on, each a view; the target and weights follow the rows, the caller's untouched."""
    rng = np.random.default_rng(0)
    X = np.arange(40.0).reshape(20, 2)
    y, weight = np.arange(20) % 2, rng.random(20)
    before = {tuple(row): (label, w) for row, label, w in zip(X, y, weight, strict=True)}
    stop = np.array([1, 4, 17, 19])
    caller_y, caller_weight = y.copy(), weight.copy()
    X2, y2, w2, (fit, held) = fitting.stopping_rows_last(X, y, weight, stop)
    assert X2 is X
    assert sorted(map(tuple, X[held])) == sorted(map(tuple, np.arange(40.0).reshape(20, 2)[stop]))
    assert np.shares_memory(X[fit], X) and np.shares_memory(X[held], X)
    assert len(X[fit]) == 16 and len(X[held]) == 4
    assert w2 is not None
    after = {tuple(row): (label, w) for row, label, w in zip(X, y2, w2, strict=True)}
    assert after == before  # every row keeps its label and weight
    np.testing.assert_array_equal(y, caller_y)
    np.testing.assert_array_equal(weight, caller_weight)


def test_a_boosting_fit_on_its_own_rows_copies_none_of_them() -> None:
    """HistGradientBoosting's early stopping on an inner split: float64 rows, fitted and
    stopped on as views of them (a fit on 67.5k rows x 50 columns copied 27 MB, then 50 MB
    more inside scikit-learn's estimator)."""
    from mltrainer.tools.training.engine.custom import HGBClassifierModel

    X, y = coded_rows(rows=40_000, columns=40)
    model = HGBClassifierModel(
        max_iter=20,
        max_leaf_nodes=8,
        categorical_features=[0, 1],
        early_stopping=True,
        random_state=0,
    )
    tracemalloc.start()
    try:
        fitting.fit_model(
            "hist_gradient_boosting", model, X, y, None, None, classification=True, owned=True
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 2, (peak, X.nbytes)
    assert model.predict_proba(X[:10]).shape == (10, 2)


def test_a_sampled_search_releases_its_frame_before_the_final_fits() -> None:
    """The search's frame (a sample of the training rows) is dropped once the search is over:
    the fits on the training rows copy their own (48k rows x 50 columns: 19 MB)."""
    frame = mixed_classification(rows=900)
    plan = build_plan(frame, request(target="label", models=["linear"], time_budget_s=20))
    plan.max_search_rows = 300
    run = TabularRun(frame, plan, NullReporter(), time.monotonic())
    assert len(run.search_rows) == 300 < len(run.data.train)
    result = run.run()
    assert run.problem.X is None
    assert result.score is not None and np.isfinite(result.score)
    whole = TabularRun(
        frame,
        build_plan(frame, request(target="label", models=["linear"], time_budget_s=20)),
        NullReporter(),
        time.monotonic(),
    )
    whole.run()
    assert whole.problem.X is not None  # the training rows themselves: read by the final fit

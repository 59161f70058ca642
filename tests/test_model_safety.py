"""Models load only what models are made of, from the file that was saved.

The allow-list is checked against what the engine really saves (every family and task, trained
on tiny data); a model file naming anything else, or changed since it was saved, is refused by
the server's loader and through the predict tool.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io
from conftest import connect, error_text, payload

from mltrainer.state.errors import UntrustedModel
from mltrainer.state.masking import Masker
from mltrainer.state.models import ModelRecord
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.training.model import ModelMeta, SavedModel, load_model, save_model
from mltrainer.tools.training.trusted import CUSTOM_MODULE, TRUSTED_TYPES, refused_types

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command

# --- the allow-list is what the engine saves ---------------------------------------------------


def tabular_frame(rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    words = np.array(["good", "bad", "fine", "broken", "great", "poor", "ok", "nice"])
    return pd.DataFrame(
        {
            "num": rng.normal(size=rows),
            "cat": rng.choice(["a", "b", "c"], rows),
            "high": [f"v{i}" for i in rng.integers(0, 60, rows)],
            "when": pd.date_range("2024-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
            "text": [" ".join(rng.choice(words, 4)) for _ in range(rows)],
        }
    )


# Few boosting rounds: the types a model holds do not depend on how many (fast on a busy machine).
FEW_ROUNDS = {"hist_gradient_boosting": {"max_iter": 5}, "xgboost": {"n_estimators": 5}}


def few_rounds(model: Any) -> Any:
    """``model`` with at most 5 boosting iterations, wherever it nests them."""
    names = [k for k in model.get_params() if k.split("__")[-1] == "max_iter"]
    return model.set_params(**dict.fromkeys(names, 5))


def saved_types(estimator: Any) -> set[str]:
    return set(skops.io.get_untrusted_types(data=skops.io.dumps(estimator)))


def tabular_types() -> set[str]:
    """Every family, for every supervised task, on every kind of column (a sparse text part
    included) and on a few numeric columns with missing values (k-NN then builds a KD-tree);
    fitted as the search fits them (with a validation set) and as the final refit does."""
    numeric = tabular_frame()[["num"]].assign(other=np.linspace(0, 1, 120))
    numeric.loc[::7, "num"] = np.nan
    return tabular_types_on(tabular_frame()) | tabular_types_on(numeric)


def tabular_types_on(X: pd.DataFrame) -> set[str]:
    from mltrainer.tools.training.engine import families as fam
    from mltrainer.tools.training.engine.custom import BlendModel
    from mltrainer.tools.training.engine.metrics import MetricContext
    from mltrainer.tools.training.engine.search import Problem, fit_pipeline
    from mltrainer.tools.training.plan import ColumnPlan

    n = len(X)
    kinds = {"num": "numeric", "other": "numeric", "cat": "categorical"}
    kinds |= {"high": "high_cardinality", "when": "datetime", "text": "text"}
    columns = [
        ColumnPlan(name=name, kind=kinds[name], n_unique=int(X[name].nunique()), missing_fraction=0)
        for name in X.columns
    ]
    rng = np.random.default_rng(1)
    found: set[str] = set()
    for task, n_classes in (("binary", 2), ("multiclass", 3), ("regression", 0)):
        y = rng.integers(0, n_classes, n) if n_classes else rng.normal(size=n)
        ctx = fam.FitContext(task=task, n_classes=n_classes, n_rows=n, seed=0)
        problem = Problem(
            X=X,
            y=y,
            weight=None,
            splits=[(np.arange(90), np.arange(90, n))],
            columns=columns,
            ctx=ctx,
            metric="accuracy" if n_classes else "r2",
            metric_ctx=MetricContext(n_classes=n_classes),
        )
        members = []
        for family in fam.FAMILIES:
            params = {**fam.portfolio(family, ctx)[0], **FEW_ROUNDS.get(family, {})}
            model, facts = fit_pipeline(problem, family, params, X, y, None, None)
            refit = fam.refit_params(family, params, [facts])
            final, _ = fit_pipeline(problem, family, refit, X, y, np.ones(n), None)
            members += [[model], [final]]
        if not n_classes:  # a heavy-tailed target's candidates learn a transform of it
            transformed = {**fam.portfolio("linear", ctx)[0], "target_transform": True}
            members.append([fit_pipeline(problem, "linear", transformed, X, y, None, None)[0]])
        classes = list(range(n_classes)) if n_classes else None
        blend = BlendModel(task, list(X.columns), members, [1.0] * len(members), classes)
        found |= saved_types(blend)
    return found


def forecast_types() -> set[str]:
    """Every forecast candidate (and their blend) inside a ForecastModel of a panel."""
    from mltrainer.tools.training.engine.custom import (
        SERIES_FEATURE,
        ForecastModel,
        MeanRegressor,
        make_lag_features,
    )
    from mltrainer.tools.training.engine.forecast_candidates import candidates
    from mltrainer.tools.training.planner import build_plan
    from mltrainer.tools.training.request import TrainRequest

    times = pd.Series(pd.date_range("2024-01-01", periods=60, freq="D"))
    values = 10 + np.sin(np.arange(60) / 3)
    frame = pd.DataFrame({"date": times, "store": "a", "sales": values})
    request = TrainRequest(
        dataset="d", target="sales", task="forecast", time_column="date", group_column="store"
    )
    plan = build_plan(frame, request)
    features = make_lag_features(values, times, [1, 7], [3])
    features[SERIES_FEATURE] = 0.0
    found: set[str] = set()
    kinds = {}  # one candidate of each kind: (family, learns the level or the change)
    for candidate in candidates(plan, 2, 7):
        kinds.setdefault((candidate.family, candidate.params.get("target")), candidate.model)
    models = [few_rounds(model) for model in kinds.values()]
    assert len(models) == 6  # seasonal naive, naive, ridge and boosting on level and change
    for regressor in [*models, MeanRegressor(models[2:5])]:
        fitted = regressor.fit(features.iloc[7:], values[7:])
        model = ForecastModel(
            "date", fitted, [1, 7], [3], [t.isoformat() for t in times], list(values), "D",
            "store", ["a"], ["a"] * 60, [10.0],
        )  # fmt: skip
        found |= saved_types(model)
    return found


def clustering_types() -> set[str]:
    from mltrainer.tools.training.automl import fit_automl
    from mltrainer.tools.training.progress import NullReporter
    from mltrainer.tools.training.request import TrainRequest

    frame = tabular_frame(80)[["num", "cat", "high", "when"]]
    result = fit_automl(
        frame, TrainRequest(dataset="d", task="clustering", time_budget_s=5), NullReporter()
    )
    return saved_types(result.estimator)


def test_the_allow_list_is_exactly_what_the_engine_saves() -> None:
    """Every type the engine's models hold is on the list (else its models would not load), and
    every entry is something the engine saves (else the list trusts more than it needs)."""
    found = tabular_types() | forecast_types() | clustering_types()
    assert refused_types(found) == []
    assert set(TRUSTED_TYPES) == found


def test_every_custom_class_a_model_can_hold_is_on_the_list() -> None:
    from mltrainer.tools.training.engine import custom

    listed = {name.rsplit(".", 1)[1] for name in TRUSTED_TYPES if name.startswith(CUSTOM_MODULE)}
    assert {cls.__name__ for cls in custom.CLASSES} - listed == {"XGBModel"}  # a base class
    assert all(cls.__module__ == CUSTOM_MODULE for cls in custom.CLASSES)


# --- the loader ----------------------------------------------------------------------------------


def small_model(c: float = 1.0) -> Any:
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    return LogisticRegression(C=c).fit(X, [0, 0, 1, 1])


def saved(folder: Path, estimator: Any | None = None) -> SavedModel:
    meta = ModelMeta(model_id=folder.name, task="binary", target="y", features=["x"], metric="auc")
    return save_model(folder, estimator or small_model(), meta, Masker())


def runstring_model() -> Any:
    """A model whose transform would run code: numpy.testing's runstring execs its argument."""
    from numpy.testing._private.utils import runstring
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(func=runstring, kw_args={"dict": {}})


def test_a_model_naming_numpy_runstring_is_refused_even_if_meta_json_trusts_it(
    tmp_path: Path,
) -> None:
    """The loader trusted any ``numpy.`` type and meta.json's list: runstring ran on predict."""
    folder = tmp_path / "m"
    saved(folder)
    (folder / "model.skops").write_bytes(skops.io.dumps(runstring_model()))
    meta = json.loads((folder / "meta.json").read_text())
    meta["trusted_types"] = ["numpy.testing._private.utils.runstring"]
    (folder / "meta.json").write_text(json.dumps(meta))

    with pytest.raises(UntrustedModel, match="allow-list") as refused:
        load_model(folder, sha256=None)
    assert "numpy.testing._private.utils.runstring" in str(refused.value)


def test_a_model_file_changed_since_it_was_saved_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    first = saved(folder)
    assert load_model(folder, sha256=first.file_sha256).file_sha256 == first.file_sha256
    other = small_model(c=0.01)
    (folder / "model.skops").write_bytes(skops.io.dumps(other))  # allowed types, other model

    with pytest.raises(UntrustedModel, match="changed since the model was saved"):
        load_model(folder, sha256=first.file_sha256)


def test_meta_json_records_the_file_types_for_people_not_for_the_loader(tmp_path: Path) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from mltrainer.tools.training.engine.custom import Stringify

    X = pd.DataFrame({"x": ["a", "b", "a", "b"]})
    model = make_pipeline(Stringify(), OneHotEncoder()).fit(X)
    first = saved(tmp_path / "m", model)
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    assert meta["trusted_types"] == [f"{CUSTOM_MODULE}.Stringify"] == first.meta.trusted_types
    assert refused_types(meta["trusted_types"]) == []


def test_saving_refuses_a_model_that_could_not_be_loaded_again(tmp_path: Path) -> None:
    with pytest.raises(UntrustedModel, match="allow-list"):
        saved(tmp_path / "m", runstring_model())
    assert not list((tmp_path / "m").iterdir())  # neither the model nor the file it was staged in


# --- the store: migration 002 and the hash accessors ---------------------------------------------


def record(folder: Path, model: SavedModel | None) -> ModelRecord:
    return ModelRecord(
        id=folder.name,
        job_id="job_x",
        task="binary",
        target="y",
        metric="auc",
        score=None,
        path=str(folder),
        features=["x"],
        file_sha256=model.file_sha256 if model else None,
    )


def test_migration_002_adds_the_model_hash_to_a_database_of_001(tmp_path: Path) -> None:
    from mltrainer.state import db

    path = tmp_path / "old.db"
    old = db._import_sqlite_utils().Database(sqlite3.connect(path, isolation_level=None))
    old.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    db._m001_initial(old)
    old.execute("INSERT INTO _migrations VALUES ('001_initial', datetime('now'))")
    old["models"].insert(
        {"id": "model_old", "job_id": "j", "task": "binary", "metric": "auc", "path": "/x",
         "features": "[]", "summary": "{}", "created_at": "2026-01-01T00:00:00+00:00"}
    )  # fmt: skip
    old.close()

    store = Store(path, Masker())
    assert [name for name, _ in db.MIGRATIONS][:2] == ["001_initial", "002_model_file_hash"]
    assert store.get_model("model_old").file_sha256 is None
    assert store.record_model_file_sha256("model_old", "a" * 64).file_sha256 == "a" * 64
    # Recorded once: never replaced afterwards.
    assert store.record_model_file_sha256("model_old", "b" * 64).file_sha256 == "a" * 64


# --- through the predict tool ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_predict_verifies_the_model_file_before_loading_it(
    settings: Settings, tmp_path: Path
) -> None:
    """A model saved with its hash predicts; once its file is replaced it is refused. A model
    the store has no hash of (saved by an earlier version) gets one at its first load."""
    store = Store(settings.db_path, Masker())
    hashed = settings.models_dir / "model_hashed00"
    store.save_model(record(hashed, saved(hashed)))
    unhashed = settings.models_dir / "model_unhashed0"
    saved(unhashed)
    store.save_model(record(unhashed, None))
    rows = tmp_path / "rows.csv"
    rows.write_text("x\n0.0\n3.0\n")

    async with connect("memory", settings) as client:

        async def predict(model_id: str) -> Any:
            return await client.call_tool("predict", {"model": model_id, "dataset": str(rows)})

        assert payload(await predict("model_hashed00"))["n_rows"] == 2
        assert payload(await predict("model_unhashed0"))["n_rows"] == 2
        assert store.get_model("model_unhashed0").file_sha256 is not None  # recorded at first use

        for folder in (hashed, unhashed):
            (folder / "model.skops").write_bytes(skops.io.dumps(runstring_model()))
            failed = await predict(folder.name)
            assert "changed since the model was saved" in error_text(failed)
        listed = payload(await client.call_tool("list_jobs", {}))  # the server keeps serving
        assert listed["count"] == 0

"""The standalone predict.py: made from a real template module, runs without mltrainer, and loads
only an unchanged model file made of the project's allow-listed types."""

from __future__ import annotations

import collections
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from report_fixtures import (
    CUSTOM_MODULE,
    CUSTOM_SOURCE,
    custom_module,
    mixed_frame,
    run_isolated,
)

from mltrainer.state.masking import Masker
from mltrainer.tools.training import standalone
from mltrainer.tools.training.trusted import TRUSTED_TYPES

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command

# The stand-in custom module's class, trusted for these tests only.
TEST_TRUSTED = (*TRUSTED_TYPES, f"{CUSTOM_MODULE}.RatioFeatures")


def fit_pipeline(frame: pd.DataFrame, target: str):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    ratio_features = custom_module().RatioFeatures
    prep = ColumnTransformer(
        [
            ("num", SimpleImputer(), ["x1", "x2", "ratio"]),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                ["colour"],
            ),
        ]
    )
    model = (
        HistGradientBoostingRegressor(max_iter=50, random_state=0)
        if target == "amount"
        else LogisticRegression(max_iter=500)
    )
    pipeline = Pipeline([("ratio", ratio_features()), ("prep", prep), ("model", model)])
    X = frame[["x1", "x2", "colour"]]
    return pipeline.fit(X, frame[target])


def save_model_folder(
    folder: Path,
    estimator: object,
    task: str,
    classes: list[str],
    *,
    features: tuple[str, ...] = ("x1", "x2", "colour"),
    meta_extra: dict | None = None,
) -> Path:
    """model.skops, meta.json and predict.py (for exactly this model file) in ``folder``."""
    folder.mkdir(parents=True)
    data = skops.io.dumps(estimator)
    (folder / "model.skops").write_bytes(data)
    (folder / "meta.json").write_text(
        standalone.meta_json(task, features, classes, target="label", extra=meta_extra)
    )
    script = folder / "predict.py"
    script.write_text(
        standalone.predict_script(
            hashlib.sha256(data).hexdigest(),
            sources=[CUSTOM_SOURCE],
            custom_module=CUSTOM_MODULE,
            trusted_types=TEST_TRUSTED,
        )
    )
    return script


def test_predict_script_reproduces_in_process_classification(tmp_path: Path) -> None:
    frame = mixed_frame()
    pipeline = fit_pipeline(frame, "label")
    classes = [str(c) for c in pipeline.classes_]
    script = save_model_folder(tmp_path / "model", pipeline, "multiclass", classes)
    new_rows = mixed_frame(rows=80, seed=5).drop(columns=["label", "amount"])
    new_rows["unused"] = "ignored"  # extra columns are allowed
    input_csv = tmp_path / "input.csv"
    new_rows.to_csv(input_csv, index=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    completed = run_isolated(script, str(input_csv), "out.csv", cwd=elsewhere)

    assert completed.returncode == 0, completed.stderr
    result = pd.read_csv(elsewhere / "out.csv")
    expected_rows = pd.read_csv(input_csv)[["x1", "x2", "colour"]]
    assert list(result.columns) == ["prediction", *(f"proba_{c}" for c in classes)]
    assert len(result) == 80
    assert result["prediction"].astype(str).tolist() == list(pipeline.predict(expected_rows))
    np.testing.assert_allclose(
        result[[f"proba_{c}" for c in classes]].to_numpy(),
        pipeline.predict_proba(expected_rows),
        rtol=1e-9,
        atol=1e-12,
    )


def test_predict_script_regression_with_parquet(tmp_path: Path) -> None:
    frame = mixed_frame(rows=200)
    pipeline = fit_pipeline(frame, "amount")
    script = save_model_folder(tmp_path / "model", pipeline, "regression", [])
    rows = mixed_frame(rows=40, seed=9).drop(columns=["label", "amount"])
    rows.to_parquet(tmp_path / "input.parquet")

    completed = run_isolated(script, "input.parquet", "out.parquet", cwd=tmp_path)

    assert completed.returncode == 0, completed.stderr
    result = pd.read_parquet(tmp_path / "out.parquet")
    assert list(result.columns) == ["prediction"]
    np.testing.assert_allclose(result["prediction"], pipeline.predict(rows), rtol=1e-9)


def test_predict_script_names_missing_columns(tmp_path: Path) -> None:
    pipeline = fit_pipeline(mixed_frame(), "label")
    script = save_model_folder(tmp_path / "model", pipeline, "multiclass", ["high", "low", "mid"])
    mixed_frame(rows=10).drop(columns=["colour"]).to_csv(tmp_path / "in.csv", index=False)

    completed = run_isolated(script, "in.csv", "out.csv", cwd=tmp_path)

    assert completed.returncode != 0
    assert "lacks columns the model needs: ['colour']" in completed.stderr
    assert not (tmp_path / "out.csv").exists()


def run_refused(tmp_path: Path, estimator: object, meta_extra: dict | None = None) -> str:
    """Save ``estimator`` with a predict.py, run it; it must refuse: its stderr."""
    script = save_model_folder(
        tmp_path / "model", estimator, "regression", [], features=("x1",), meta_extra=meta_extra
    )
    pd.DataFrame({"x1": [1.0]}).to_csv(tmp_path / "in.csv", index=False)
    completed = run_isolated(script, "in.csv", "out.csv", cwd=tmp_path)
    assert completed.returncode != 0
    assert not (tmp_path / "out.csv").exists()
    return completed.stderr


def test_predict_script_refuses_unexpected_types(tmp_path: Path) -> None:
    from sklearn.preprocessing import FunctionTransformer

    stderr = run_refused(tmp_path, FunctionTransformer(func=os.system))
    assert "refusing to load model.skops" in stderr
    assert "posix.system" in stderr or "nt.system" in stderr


@pytest.mark.parametrize(
    ("func", "name"),
    [(exec, "builtins.exec"), (collections.namedtuple, "collections.namedtuple")],
)
def test_the_standalone_predict_script_refuses_builtins_and_collections_types(
    tmp_path: Path, func: object, name: str
) -> None:
    """It trusted the ``builtins.`` and ``collections.`` prefixes: ``builtins.exec`` ran code."""
    from sklearn.preprocessing import FunctionTransformer

    stderr = run_refused(tmp_path, FunctionTransformer(func=func))
    assert "refusing to load model.skops" in stderr and name in stderr


def test_the_standalone_predict_script_ignores_the_type_list_in_meta_json(tmp_path: Path) -> None:
    """It also trusted what meta.json listed, which is as easy to change as the model."""
    from sklearn.preprocessing import FunctionTransformer

    stderr = run_refused(
        tmp_path,
        FunctionTransformer(func=os.system),
        meta_extra={"trusted_types": [f"{os.system.__module__}.system"]},
    )
    assert "refusing to load model.skops" in stderr


def test_the_standalone_predict_script_refuses_a_model_file_changed_since_it_was_saved(
    tmp_path: Path,
) -> None:
    pipeline = fit_pipeline(mixed_frame(), "label")
    script = save_model_folder(tmp_path / "model", pipeline, "multiclass", ["high", "low", "mid"])
    other = fit_pipeline(mixed_frame(seed=3), "label")  # as trusted, but not the model saved
    (script.parent / "model.skops").write_bytes(skops.io.dumps(other))
    mixed_frame(rows=10).to_csv(tmp_path / "in.csv", index=False)

    completed = run_isolated(script, "in.csv", "out.csv", cwd=tmp_path)

    assert completed.returncode != 0
    assert "changed since the model was saved" in completed.stderr
    assert not (tmp_path / "out.csv").exists()


def test_predict_script_keeps_the_inlined_source_exact() -> None:
    tricky = 'X = "marker CUSTOM_SOURCES = () and \\\\ backslash"\nY = r"\\d+"\n'
    namespace: dict[str, object] = {"__name__": "predict", "__file__": "predict.py"}
    exec(standalone.predict_script("0" * 64, sources=[tricky], custom_module="m"), namespace)
    assert namespace["CUSTOM_SOURCES"] == (tricky,)
    quoted = "Z = '''triple'''\n"
    exec(standalone.predict_script("0" * 64, sources=[quoted, ""], custom_module="m"), namespace)
    assert namespace["CUSTOM_SOURCES"] == (quoted, "")


def test_predict_script_inlines_the_engine_modules_and_the_project_allow_list() -> None:
    from mltrainer.tools.training.engine import custom

    script = standalone.predict_script("ab" * 32)
    namespace: dict[str, object] = {"__name__": "predict", "__file__": "predict.py"}
    exec(script, namespace)
    assert namespace["CUSTOM_MODULE"] == custom.__name__
    assert namespace["CUSTOM_SOURCES"] == standalone.custom_sources()
    assert len(standalone.custom_sources()) == len(custom.SOURCE_MODULES)
    assert namespace["TRUSTED_TYPES"] == tuple(sorted(TRUSTED_TYPES))
    assert namespace["MODEL_SHA256"] == "ab" * 32
    assert not any(t.endswith(".") for t in TRUSTED_TYPES)  # concrete types, no prefixes


def test_the_template_is_the_script_with_its_generated_lines_filled_in() -> None:
    import ast

    def statements(text: str) -> tuple[list[str], dict[str, object]]:
        """The module's statements other than the generated constants, and those constants."""
        kept, generated = [], {}
        for node in ast.parse(text).body:
            target = getattr(node, "target", None) or (getattr(node, "targets", None) or [None])[0]
            name = getattr(target, "id", None)
            if name in standalone.GENERATED:
                generated[name] = ast.literal_eval(node.value)  # type: ignore[attr-defined]
            else:
                kept.append(ast.dump(node))
        return kept, generated

    template, defaults = statements(standalone.template_text())
    script, filled = statements(standalone.predict_script("cd" * 32, sources=["A = 1\n"]))
    assert script == template
    assert set(defaults) == set(filled) == set(standalone.GENERATED)
    assert filled["MODEL_SHA256"] == "cd" * 32 and filled["CUSTOM_SOURCES"] == ("A = 1\n",)
    assert defaults["TRUSTED_TYPES"] == () and defaults["CUSTOM_SOURCES"] == ()


def test_meta_json_round_trips() -> None:
    meta = json.loads(
        standalone.meta_json("binary", ["a", "b"], [0, 1], target="y", extra={"v": 1})
    )
    assert meta == {
        "task": "binary",
        "target": "y",
        "features": ["a", "b"],
        "classes": ["0", "1"],
        "v": 1,
    }


def test_predict_script_runs_an_automl_model_standalone(tmp_path: Path) -> None:
    """The real thing: the engine's model, saved as the job saves it, predicted by the script."""
    from mltrainer.tools.training import plots
    from mltrainer.tools.training.automl import fit_automl
    from mltrainer.tools.training.model import ModelMeta, save_model
    from mltrainer.tools.training.progress import NullReporter
    from mltrainer.tools.training.request import TrainRequest

    frame = mixed_frame(rows=400).drop(columns=["amount"])
    request = TrainRequest(dataset="mixed", target="label", time_budget_s=5, seed=0)
    result = fit_automl(frame, request, NullReporter())
    folder = tmp_path / "model"
    meta = ModelMeta(
        model_id="m",
        task=result.task,
        target="label",
        features=result.features,
        classes=result.classes,
        metric=result.metric,
    )
    saved = save_model(folder, result.estimator, meta, Masker())
    (folder / "predict.py").write_text(standalone.predict_script(saved.file_sha256))
    rows = mixed_frame(rows=60, seed=3).drop(columns=["label", "amount"])
    rows.to_csv(tmp_path / "in.csv", index=False)

    completed = run_isolated(folder / "predict.py", "in.csv", "out.csv", cwd=tmp_path)

    assert completed.returncode == 0, completed.stderr
    result_rows = pd.read_csv(tmp_path / "out.csv")
    expected = pd.read_csv(tmp_path / "in.csv")[result.features]
    assert result_rows["prediction"].astype(str).tolist() == [
        str(p) for p in result.estimator.predict(expected)
    ]
    np.testing.assert_allclose(
        result_rows[[f"proba_{c}" for c in result.classes]].to_numpy(),
        result.estimator.predict_proba(expected),
        rtol=1e-7,
        atol=1e-9,
    )
    images = plots.plots_for_result(result, Masker())
    assert {"confusion_matrix.png", "roc.png"} <= set(images)


@pytest.mark.parametrize("name", ["GENERATED_ON", "TRUSTED_TYPES"])
def test_a_template_without_a_generated_line_is_an_internal_error(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mltrainer.state.errors import InternalError

    text = standalone.template_text()
    broken = "\n".join(line for line in text.splitlines() if not line.startswith(name))
    monkeypatch.setattr(standalone, "template_text", lambda: broken)
    with pytest.raises(InternalError, match="each generated line once"):
        standalone.predict_script("0" * 64)


def test_the_inlined_custom_modules_stand_alone_in_one_namespace() -> None:
    """predict.py runs every custom module in one module: none may import the project or a
    sibling, and no two may define the same top-level name."""
    import ast

    allowed_roots = {"__future__", "typing", "time", "numpy", "pandas", "sklearn", "xgboost"}
    defined: dict[str, str] = {}
    for index, source in enumerate(standalone.custom_sources()):
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0 and node.module, f"part {index}: relative import"
                assert node.module.split(".")[0] in allowed_roots, node.module
            elif isinstance(node, ast.Import):
                assert {a.name.split(".")[0] for a in node.names} <= allowed_roots
        for node in tree.body:
            names = []
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            for name in names:
                assert name not in defined, f"{name} in parts {defined.get(name)} and {index}"
                defined[name] = str(index)

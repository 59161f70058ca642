"""The training report: plots, model card and the standalone predict.py, on real models."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from report_fixtures import (
    CUSTOM_MODULE,
    CUSTOM_SOURCE,
    custom_module,
    mixed_frame,
    run_isolated,
)

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.training import report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(data: bytes) -> tuple[int, int]:
    from PIL import Image

    assert data.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        assert image.width > 100 and image.height > 100
        return image.size


# --- plots ------------------------------------------------------------------------------------


def test_binary_plots_are_pngs() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.choice(["no", "yes"], size=200)
    p_yes = np.clip((y_true == "yes") * 0.6 + rng.random(200) * 0.4, 0, 1)
    proba = np.column_stack([1 - p_yes, p_yes])
    y_pred = np.where(p_yes > 0.5, "yes", "no")
    images = report.plots(
        "binary",
        y_true=y_true,
        y_pred=y_pred,
        proba=proba,
        classes=["no", "yes"],
        positive_class="yes",
        feature_importance=[("a", 0.5), ("b", 0.3), ("c", 0.2)],
    )
    assert set(images) == {"confusion_matrix.png", "roc.png", "feature_importance.png"}
    for data in images.values():
        assert_png(data)


def test_multiclass_plots_draw_every_class() -> None:
    classes = [f"c{i}" for i in range(12)]
    rng = np.random.default_rng(1)
    y_true = rng.choice(classes, size=300)
    proba = rng.dirichlet(np.ones(len(classes)), size=300)
    y_pred = np.asarray(classes)[proba.argmax(axis=1)]
    images = report.plots("multiclass", y_true=y_true, y_pred=y_pred, proba=proba, classes=classes)
    assert set(images) == {"confusion_matrix.png", "roc.png"}
    for data in images.values():
        assert_png(data)


def test_regression_forecast_and_clustering_plots() -> None:
    rng = np.random.default_rng(2)
    actual = rng.normal(size=150)
    residuals = report.plots("regression", y_true=actual, y_pred=actual + rng.normal(size=150))
    assert set(residuals) == {"residuals.png"}
    width, height = assert_png(residuals["residuals.png"])
    assert width > height  # two panels side by side

    history_time = pd.date_range("2024-01-01", periods=60, freq="D")
    future_time = pd.date_range("2024-03-01", periods=14, freq="D")
    forecast = report.plots(
        "forecast",
        history=(history_time, np.sin(np.arange(60) / 5)),
        forecast=(future_time, np.sin(np.arange(60, 74) / 5)),
        y_true=np.sin(np.arange(60, 74) / 5) + 0.1,
    )
    assert_png(forecast["forecast.png"])

    clusters = report.plots("clustering", y_pred=rng.integers(0, 4, size=100))
    assert_png(clusters["cluster_sizes.png"])


def test_plots_leave_out_what_lacks_inputs() -> None:
    assert report.plots("binary") == {}
    assert report.plots("regression", y_true=[1.0, 2.0]) == {}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: report.plots("survival", y_true=[1]), "unknown task"),
        (lambda: report.roc_png(["a", "b"], np.ones((2, 3)), ["a", "b"]), "one column per class"),
        (lambda: report.roc_png(["a", "b"], np.ones((2, 2)), ["a", "b"], "z"), "positive class"),
        (lambda: report.residuals_png([1.0, 2.0], [1.0]), "same length"),
        (lambda: report.residuals_png([], []), "non-empty"),
        (lambda: report.confusion_matrix_png([], [], []), "at least one class"),
        (lambda: report.cluster_sizes_png([]), "no cluster labels"),
        (lambda: report.feature_importance_png([]), "no feature importance"),
        (lambda: report.forecast_png([1, 2], [1.0], [3], [1.0]), "as long as its values"),
    ],
)
def test_bad_plot_inputs_raise_invalid_input(call, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        call()


def test_roc_skips_a_class_absent_from_the_holdout() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    assert_png(report.roc_png(["a", "b", "a"], proba, ["a", "b", "c"]))


# --- model card -------------------------------------------------------------------------------


def card_info(**overrides: object) -> report.CardInfo:
    values: dict[str, object] = dict(
        model_name="churn-xgboost",
        task="binary",
        target="churned",
        metric="roc_auc",
        features=["tenure", "plan", "monthly_fee"],
        classes=["no", "yes"],
        positive_class="yes",
        cv_mean=0.912,
        cv_std=0.011,
        holdout={"roc_auc": 0.9234, "accuracy": 0.871, "log_loss": 0.3012},
        leaderboard=[
            report.LeaderboardRow(name="xgboost", cv_mean=0.912, cv_std=0.011, fit_time_s=3.2),
            report.LeaderboardRow(name="logistic", cv_mean=0.88, cv_std=0.02, fit_time_s=0.4),
        ],
        feature_importance=[("tenure", 0.6), ("plan", 0.3), ("monthly_fee", 0.1)],
        decisions=["dropped customer_id: identifier", "5-fold stratified CV: 2,000 rows"],
        dropped_columns={"customer_id": "identifier (unique per row)"},
        dataset_name="churn.csv",
        dataset_ref="ds_123",
        dataset_rows=2000,
        dataset_columns=5,
        seed=7,
        library_versions={"scikit-learn": "1.9.1", "xgboost": "3.2.0"},
    )
    values.update(overrides)
    return report.CardInfo.model_validate(values)


def split_front_matter(card: str) -> tuple[dict, str]:
    assert card.startswith("---\n")
    front, body = card[4:].split("\n---\n", 1)
    return yaml.safe_load(front), body


def test_model_card_front_matter_carries_the_metrics() -> None:
    card = report.model_card(card_info())
    meta, body = split_front_matter(card)
    assert meta["library_name"] == "sklearn"
    assert meta["pipeline_tag"] == "tabular-classification"
    assert {"mltrainer", "skops", "binary"} <= set(meta["tags"])
    (entry,) = meta["model-index"]
    assert entry["name"] == "churn-xgboost"
    metrics = {m["type"]: m["value"] for m in entry["results"][0]["metrics"]}
    assert metrics == {"roc_auc": 0.9234, "accuracy": 0.871, "log_loss": 0.3012}
    assert entry["results"][0]["dataset"]["name"] == "churn.csv"
    for section in (
        "## Intended use",
        "## Training data",
        "## Evaluation",
        "## Limitations",
        "## How to use",
    ):
        assert section in body
    assert "0.912 ± 0.011" in body
    assert "dropped customer_id: identifier" in body
    assert "python predict.py input.csv predictions.csv" in body


def test_model_card_is_read_back_by_huggingface_hub() -> None:
    from huggingface_hub import ModelCard

    data = ModelCard(report.model_card(card_info())).data
    results = {r.metric_type: r.metric_value for r in getattr(data, "eval_results", [])}
    assert results["roc_auc"] == pytest.approx(0.9234)
    assert getattr(data, "library_name", None) == "sklearn"


def test_model_card_for_regression_and_clustering() -> None:
    meta, body = split_front_matter(
        report.model_card(
            card_info(
                task="regression",
                classes=[],
                positive_class=None,
                holdout={"r2": 0.8, "rmse": 1.5},
                metric="r2",
            )
        )
    )
    assert meta["pipeline_tag"] == "tabular-regression"
    assert "proba_" not in body
    meta, body = split_front_matter(
        report.model_card(
            card_info(
                task="clustering",
                target=None,
                classes=[],
                holdout={},
                metric="silhouette",
                cv_mean=None,
                leaderboard=[],
            )
        )
    )
    assert "pipeline_tag" not in meta and "model-index" not in meta
    assert "assigns rows to clusters" in body


def test_card_info_rejects_an_empty_model_name() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        card_info(model_name="")


# --- standalone predict.py --------------------------------------------------------------------


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


def save_model_folder(folder: Path, pipeline, task: str, classes: list[str]) -> Path:
    import skops.io

    folder.mkdir(parents=True)
    skops.io.dump(pipeline, folder / "model.skops")
    (folder / "meta.json").write_text(
        report.meta_json(task, ["x1", "x2", "colour"], classes, target="label")
    )
    script = folder / "predict.py"
    script.write_text(report.predict_script(CUSTOM_SOURCE, custom_module=CUSTOM_MODULE))
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


def test_predict_script_refuses_unexpected_types(tmp_path: Path) -> None:
    import os

    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    folder = tmp_path / "model"
    folder.mkdir()
    skops.io.dump(FunctionTransformer(func=os.system), folder / "model.skops")
    (folder / "meta.json").write_text(report.meta_json("regression", ["x1"]))
    (folder / "predict.py").write_text(report.predict_script(""))
    pd.DataFrame({"x1": [1.0]}).to_csv(tmp_path / "in.csv", index=False)

    completed = run_isolated(folder / "predict.py", "in.csv", "out.csv", cwd=tmp_path)

    assert completed.returncode != 0
    assert "refusing to load model.skops" in completed.stderr
    assert "posix.system" in completed.stderr


def test_predict_script_keeps_the_inlined_source_exact() -> None:
    tricky = 'X = "marker __CUSTOM_SOURCE__ and \\\\ backslash"\nY = r"\\d+"\n'
    namespace: dict[str, object] = {"__name__": "predict", "__file__": "predict.py"}
    exec(report.predict_script(tricky, custom_module="m"), namespace)
    assert namespace["CUSTOM_SOURCE"] == tricky
    quoted = "Z = '''triple'''\n"
    exec(report.predict_script(quoted, custom_module="m"), namespace)
    assert namespace["CUSTOM_SOURCE"] == quoted


def test_predict_script_inlines_the_engine_module_by_default() -> None:
    source = report.custom_module_source()
    if source is None:
        pytest.skip(f"{report.CUSTOM_MODULE} does not exist yet")
    script = report.predict_script()
    assert f"CUSTOM_MODULE = {report.CUSTOM_MODULE!r}" in script
    namespace: dict[str, object] = {"__name__": "predict", "__file__": "predict.py"}
    exec(script, namespace)
    assert namespace["CUSTOM_SOURCE"] == source


def test_meta_json_round_trips() -> None:
    meta = json.loads(report.meta_json("binary", ["a", "b"], [0, 1], target="y", extra={"v": 1}))
    assert meta == {
        "task": "binary",
        "target": "y",
        "features": ["a", "b"],
        "classes": ["0", "1"],
        "v": 1,
    }


def test_predict_script_runs_an_automl_model_standalone(tmp_path: Path) -> None:
    """The real thing: the engine's model, saved with skops, predicted by the generated script."""
    automl = pytest.importorskip("mltrainer.tools.training.automl")
    import skops.io

    from mltrainer.tools.training.reporting import NullReporter
    from mltrainer.tools.training.request import TrainRequest

    frame = mixed_frame(rows=400).drop(columns=["amount"])
    request = TrainRequest(dataset="mixed", target="label", time_budget_s=5, seed=0)
    result = automl.fit_automl(frame, request, NullReporter())
    folder = tmp_path / "model"
    folder.mkdir()
    skops.io.dump(result.estimator, folder / "model.skops")
    trusted = skops.io.get_untrusted_types(file=folder / "model.skops")
    (folder / "meta.json").write_text(
        report.meta_json(
            result.task,
            result.features,
            result.classes,
            target="label",
            extra={"trusted_types": trusted},
        )
    )
    (folder / "predict.py").write_text(report.predict_script())
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
    images = report.plots_for_result(result)
    assert {"confusion_matrix.png", "roc.png"} <= set(images)
    for data in images.values():
        assert_png(data)
    card = report.model_card(
        report.card_info_for_result(result, model_name="mixed-automl", dataset_name="mixed.csv")
    )
    meta, _ = split_front_matter(card)
    metrics = {m["type"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert result.metric in metrics

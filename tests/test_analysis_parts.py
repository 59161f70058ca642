"""The analysis's parts on their own: the significance check, suggestions and the suggestion ->
next request function, and the held-out rows file written from a real engine result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from mltrainer.state.masking import Masker
from mltrainer.tools.analysis import (
    HOLDOUT_FILE,
    EvaluatedRows,
    ModelFacts,
    analyze,
    model_facts,
    next_request,
    read_holdout,
    write_holdout,
)
from mltrainer.tools.analysis.holdout import SCHEMA_KEY
from mltrainer.tools.analysis.models import (
    Evidence,
    GroupSplit,
    MissingIndicator,
    MoreData,
    OtherFamilies,
    Reweight,
    TimeSplit,
)
from mltrainer.tools.analysis.rows import labels
from mltrainer.tools.analysis.slices import find_slices
from mltrainer.tools.training.automl import AutoMLResult, fit_automl
from mltrainer.tools.training.engine.families import FAMILIES
from mltrainer.tools.training.model import ModelMeta, save_model
from mltrainer.tools.training.progress import NullReporter
from mltrainer.tools.training.request import TrainRequest

CANARY = "canary-Hq72mZ0vLw"


def facts(**fields: object) -> ModelFacts:
    base: dict[str, object] = {
        "model_id": "model_t",
        "task": "binary",
        "target": "label",
        "features": [],
        "classes": ["no", "yes"],
        "metric": "roc_auc",
    }
    return ModelFacts.model_validate(base | fields)


def rows_of(frame: pd.DataFrame, actual: list[str], predicted: list[str]) -> EvaluatedRows:
    return EvaluatedRows(
        frame=frame,
        actual=pd.Series(actual),
        predicted=pd.Series(predicted),
        proba=None,
        row=np.arange(len(frame)),
        source="holdout",
    )


def flip(actual: np.ndarray, wrong: np.ndarray) -> list[str]:
    return [("no" if a == "yes" else "yes") if w else a for a, w in zip(actual, wrong, strict=True)]


def test_a_small_unlucky_slice_is_not_significant_and_a_tiny_one_is_not_tested() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    group = np.where(np.arange(n) < 150, "weak", "other")
    lucky = np.where((np.arange(n) >= 150) & (np.arange(n) < 175), "small", "no")
    tiny = np.where((np.arange(n) >= 1990), "tiny", "no")
    errors = np.zeros(n)
    errors[:75] = 1  # weak: 50% wrong against 20% elsewhere
    errors[150:160] = 1  # small: 10 of 25 wrong, p = 0.037 before the correction
    errors[1990:] = 1  # tiny: 10 of 10 wrong, but below the minimum size
    rest = np.arange(175, 1990)
    errors[rng.choice(rest, size=int(0.2 * len(rest)), replace=False)] = 1
    frame = pd.DataFrame(
        {"group": group, "lucky": lucky, "tiny": tiny}
        | {f"x{i}": rng.normal(size=n) for i in range(4)}
    )
    found = find_slices(frame, errors, "error_rate", {}, set())
    assert found.min_rows == 20 and found.tested > 20
    top = found.slices[0]
    assert top.description == "group = 'weak'" and top.significant and top.lift > 2
    small = next(s for s in found.slices if s.value == "small")
    assert small.p_value < 0.05 and small.p_adjusted > 0.05 and not small.significant
    assert small.lift > 1.5  # worse than overall, yet ranked after the real one
    assert not any(s.value == "tiny" for s in found.slices)
    assert [s.significant for s in found.slices] == sorted(
        (s.significant for s in found.slices), reverse=True
    )


def test_missing_values_that_predict_errors_suggest_a_missing_indicator() -> None:
    rng = np.random.default_rng(3)
    n = 1000
    x = rng.normal(size=n)
    missing = rng.random(n) < 0.15
    x[missing] = np.nan
    y = rng.normal(size=n)
    y[missing & (rng.random(n) < 0.5)] = np.nan  # x and y often missing together
    wrong = np.where(missing, rng.random(n) < 0.6, rng.random(n) < 0.1)
    actual = rng.choice(["yes", "no"], size=n)
    rows = rows_of(pd.DataFrame({"x": x, "y": y}), list(actual), flip(actual, wrong))
    analysis = analyze(rows, facts(), Masker())
    assert analysis.slices[0].kind in ("missing", "missing_pattern")
    assert any(s.kind == "missing_pattern" and s.columns == ["x", "y"] for s in analysis.slices)
    indicators = [s for s in analysis.suggestions if s.action == "missing_indicator"]
    assert {s.column for s in indicators} == {"x", "y"}
    assert not any(s.actionable for s in indicators)
    assert all(s.evidence.ref.startswith("slices[") for s in indicators)
    round_ = next_request(TrainRequest(dataset="d", target="label"), analysis.suggestions)
    assert not round_.changed
    assert "missing-indicator" in next(s.reason for s in round_.skipped)


def test_an_entity_column_with_a_bad_slice_suggests_a_group_split() -> None:
    rng = np.random.default_rng(4)
    n = 1200
    customer = rng.choice([f"c{i:02d}" for i in range(30)], size=n)
    wrong = np.where(customer == "c07", rng.random(n) < 0.7, rng.random(n) < 0.1)
    actual = rng.choice(["yes", "no"], size=n)
    rows = rows_of(pd.DataFrame({"customer": customer}), list(actual), flip(actual, wrong))
    analysis = analyze(rows, facts(validation="stratified_kfold"), Masker())
    assert analysis.slices[0].value == "c07"
    split = next(s for s in analysis.suggestions if s.action == "group_split")
    assert split.column == "customer" and split.evidence.ref == "slices[0]"
    grouped = analyze(rows, facts(validation="group_kfold"), Masker())
    assert not any(s.action == "group_split" for s in grouped.suggestions)


def test_errors_in_the_latest_dates_suggest_a_time_split() -> None:
    rng = np.random.default_rng(5)
    n = 1000
    dates = pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d")
    wrong = np.where(np.arange(n) >= 800, rng.random(n) < 0.6, rng.random(n) < 0.1)
    actual = rng.choice(["yes", "no"], size=n)
    frame = pd.DataFrame({"day": dates})
    rows = rows_of(frame, list(actual), flip(actual, wrong))
    analysis = analyze(rows, facts(column_kinds={"day": "datetime"}), Masker())
    top = analysis.slices[0]
    assert top.kind == "range" and top.high == "2026-09-26" and top.significant
    split = next(s for s in analysis.suggestions if s.action == "time_split")
    assert split.column == "day"


def test_a_rare_class_with_lagging_recall_suggests_reweighting() -> None:
    rng = np.random.default_rng(6)
    n = 1000
    actual = np.where(rng.random(n) < 0.15, "yes", "no")
    wrong = np.where(actual == "yes", rng.random(n) < 0.5, rng.random(n) < 0.05)
    rows = rows_of(pd.DataFrame({"x": rng.normal(size=n)}), list(actual), flip(actual, wrong))
    analysis = analyze(rows, facts(), Masker())
    reweight = next(s for s in analysis.suggestions if s.action == "reweight")
    assert reweight.classes == ["yes"] and reweight.evidence.ref == "classification.per_class"
    balanced = analyze(rows, facts(class_weight="balanced"), Masker())
    assert not any(s.action == "reweight" for s in balanced.suggestions)


def evidence(ref: str = "slices[0]") -> Evidence:
    return Evidence(summary="seen", ref=ref)


def test_next_request_applies_what_it_can_and_says_why_not_the_rest() -> None:
    request = TrainRequest(dataset="d.csv", target="label", models=["linear"], seed=3)
    suggestions = [
        GroupSplit(column="customer", evidence=evidence()),
        TimeSplit(column="day", evidence=evidence("slices[1]")),
        Reweight(classes=["yes"], evidence=evidence("classification.per_class")),
        OtherFamilies(models=["linear", "xgboost"], evidence=evidence()),
        MissingIndicator(column="x", evidence=evidence("slices[2]")),
        MoreData(slice="colour = 'e'", rows=90, evidence=evidence()),
    ]
    round_ = next_request(request, suggestions)
    new = round_.request
    assert isinstance(new, TrainRequest)
    assert (new.validation, new.group_column, new.time_column) == ("group_kfold", "customer", None)
    assert new.class_weight == "balanced" and new.models == ["linear", "xgboost"]
    assert (new.dataset, new.target, new.seed) == ("d.csv", "label", 3)
    assert [(c.action, c.field) for c in round_.changes] == [
        ("group_split", "validation"),
        ("group_split", "group_column"),
        ("reweight", "class_weight"),
        ("other_families", "models"),
    ]
    assert round_.changes[3].previous == ["linear"] and round_.changes[3].because == "seen"
    reasons = {s.action: s.reason for s in round_.skipped}
    assert reasons.keys() == {"time_split", "missing_indicator", "more_data"}
    assert "one validation change" in reasons["time_split"]
    assert request.validation == "auto"  # the input is left as it was

    again = next_request(new, suggestions[:4])
    assert not any(c.action in ("group_split", "reweight") for c in again.changes)
    assert {s.action for s in again.skipped} >= {"group_split", "reweight", "other_families"}
    assert again.changes[0].action == "time_split"  # the validation slot is free this time

    forecast = TrainRequest(dataset="d.csv", target="y", task="forecast", time_column="t")
    assert not next_request(forecast, suggestions[:1]).changed


def test_labels_read_as_floats_match_the_models_integer_classes() -> None:
    assert list(labels(pd.Series([1.0, 0.0, 1.0]), ["0", "1"])) == ["1", "0", "1"]
    assert list(labels(pd.Series(["a", "b"]), ["a", "b"])) == ["a", "b"]


def saved(folder: Path, result: AutoMLResult) -> Path:
    save_model(
        folder,
        result.estimator,
        ModelMeta(
            model_id=folder.name,
            task=result.task,
            target=result.target,
            features=result.features,
            classes=result.classes or None,
            positive_class=result.positive_class,
            metric=result.metric,
        ),
        Masker(),
    )
    (folder / "plan.json").write_text(result.plan.model_dump_json())
    return folder


def request(**fields: object) -> TrainRequest:
    return TrainRequest.model_validate({"dataset": "test", "time_budget_s": 5, **fields})


def test_the_engines_held_out_rows_are_kept_with_row_numbers_into_the_file(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(7)
    n = 600
    frame = pd.DataFrame(
        {
            "prediction": rng.normal(size=n),  # a feature named like a reserved column
            "row": rng.integers(0, 5, size=n),
            "colour": rng.choice(["red", CANARY], size=n),
        }
    )
    frame["label"] = np.where(frame["prediction"] + (frame["colour"] == "red") > 0.5, "y", "n")
    frame.loc[[3, 10, 11], "label"] = None  # unlabelled rows shift the engine's numbering
    result = fit_automl(frame, request(target="label"), NullReporter())
    folder = saved(tmp_path / "model_h", result)
    masker = Masker({"KEY": CANARY})
    path = write_holdout(folder, result, frame, masker)
    assert path == folder / HOLDOUT_FILE and path.stat().st_mode & 0o077 == 0
    assert CANARY.encode() not in path.read_bytes()
    schema = pq.read_schema(path)
    assert SCHEMA_KEY in (schema.metadata or {})
    assert {"_prediction", "_row", "proba_n", "proba_y"} <= set(schema.names)

    rows = read_holdout(folder, model_facts(folder))
    held = result.holdout_frame
    assert held is not None and held.x_test is not None and len(rows) == len(held.x_test)
    assert rows.frame.columns.tolist() == ["prediction", "row", "colour"]
    assert (rows.row >= 0).all() and not set(rows.row) & {3, 10, 11}
    source = frame.iloc[rows.row]
    np.testing.assert_allclose(rows.frame["prediction"], source["prediction"])
    assert list(rows.actual) == list(source["label"])
    assert set(rows.frame["colour"]) == {"red", "***KEY***"}
    assert held.y_pred is not None and list(rows.predicted) == [str(v) for v in held.y_pred]
    np.testing.assert_allclose(rows.proba.to_numpy(), held.proba)


def test_a_forecasts_held_out_rows_carry_series_and_horizon_step(tmp_path: Path) -> None:
    from test_analysis_tasks import panel

    frame = panel(points=90).sample(frac=1.0, random_state=0)
    result = fit_automl(
        frame,
        request(target="sales", task="forecast", time_column="date", group_column="store"),
        NullReporter(),
    )
    folder = saved(tmp_path / "model_f", result)
    write_holdout(folder, result, frame, Masker())
    rows = read_holdout(folder, model_facts(folder))
    steps = len(rows) // 3
    assert rows.horizon is not None and list(rows.horizon) == list(range(1, steps + 1)) * 3
    assert rows.series is not None and list(rows.series[::steps]) == ["a", "b", "c"]
    source = frame.iloc[rows.row]
    assert list(source["store"]) == list(rows.series)
    np.testing.assert_allclose(source["sales"], rows.actual)
    latest = pd.to_datetime(frame["date"]).max()
    assert pd.to_datetime(source["date"]).max() == latest
    analysis = analyze(rows, model_facts(folder), Masker())
    assert analysis.forecast is not None
    assert [h.step for h in analysis.forecast.by_horizon] == list(range(1, steps + 1))


def test_clustering_keeps_no_held_out_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    result = fit_automl(frame, request(task="clustering"), NullReporter())
    assert write_holdout(tmp_path, result, frame, Masker()) is None
    assert not (tmp_path / HOLDOUT_FILE).exists()


def test_available_families_feed_the_other_families_suggestion() -> None:
    family = "linear"
    rng = np.random.default_rng(9)
    n = 800
    colour = rng.choice(list("abcd"), size=n)
    wrong = np.where(colour == "d", rng.random(n) < 0.6, rng.random(n) < 0.1)
    actual = rng.choice(["yes", "no"], size=n)
    rows = rows_of(pd.DataFrame({"colour": colour}), list(actual), flip(actual, wrong))
    tried = facts(families=[family])
    suggestion = next(
        s
        for s in analyze(rows, tried, Masker(), available_families=FAMILIES).suggestions
        if s.action == "other_families"
    )
    assert suggestion.models[0] == family and set(suggestion.models) == set(FAMILIES)
    everything = facts(families=list(FAMILIES))
    assert not any(
        s.action == "other_families"
        for s in analyze(rows, everything, Masker(), available_families=FAMILIES).suggestions
    )

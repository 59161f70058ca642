"""The planner: deterministic decisions from data and request, each with a reason."""

from __future__ import annotations

import numpy as np
import pytest

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.profiling import ProfileWarning
from mltrainer.tools.profiling.judge import Verdict, judge
from mltrainer.tools.training.planner import build_plan
from mltrainer.tools.training.request import TrainRequest
from tests.engine_fixtures import mixed_classification, regression_frame, text_frame


def request(**fields: object) -> TrainRequest:
    return TrainRequest.model_validate({"dataset": "test", **fields})


def test_infers_task_metric_column_kinds_and_validation() -> None:
    plan = build_plan(mixed_classification(rows=2000), request(target="label"))

    assert plan.task == "binary" and plan.metric == "roc_auc"
    assert plan.classes == ["no", "yes"] and plan.positive_class == "yes"
    kinds = {c.name: c.kind for c in plan.columns}
    assert kinds == {
        "x1": "numeric",
        "x2": "numeric",
        "color": "categorical",
        "city": "high_cardinality",
        "day": "datetime",
    }
    assert plan.validation.kind == "stratified_kfold" and plan.validation.n_splits == 5
    assert 0 < plan.validation.test_fraction <= 0.2
    assert {f.name for f in plan.families} >= {"xgboost", "hist_gradient_boosting", "linear"}
    assert all(f.search_space for f in plan.families)
    assert plan.time.search_s < plan.time.total_s
    assert all(d.reason for d in plan.decisions)


def test_regression_and_text_are_recognised() -> None:
    assert build_plan(regression_frame(), request(target="y")).task == "regression"
    plan = build_plan(text_frame(), request(target="sentiment", task="text_classification"))
    assert [c.kind for c in plan.columns] == ["text"]
    assert plan.families[0].name == "linear"


def test_steering_fields_are_obeyed_and_recorded() -> None:
    frame = mixed_classification(rows=500)
    frame["store"] = np.arange(len(frame)) % 25
    plan = build_plan(
        frame,
        request(
            target="label",
            models=["xgb", "logistic"],
            metric="f1",
            exclude_columns=["city"],
            group_column="store",
            class_weight="balanced",
            positive_class="no",
            instructions="favour recall",
            max_memory_mb=256,
        ),
    )

    assert [f.name for f in plan.families] == ["xgboost", "linear"]
    assert plan.metric == "f1" and plan.positive_class == "no"
    assert "city" not in plan.feature_names and "store" not in plan.feature_names
    assert {d.name: d.reason for d in plan.dropped}["city"] == "excluded by the caller"
    assert plan.validation.kind == "group_kfold" and plan.validation.group_column == "store"
    assert plan.class_weight == "balanced"
    stages = {d.stage for d in plan.decisions}
    assert {"families", "class_weight", "instructions", "validation"} <= stages
    assert plan.instructions == "favour recall"


def test_explicit_validation_and_time_column() -> None:
    frame = mixed_classification(rows=300)
    assert build_plan(frame, request(target="label", validation="holdout")).validation.n_splits == 1
    plan = build_plan(frame, request(target="label", time_column="day"))
    assert plan.validation.kind == "time_series"
    with pytest.raises(InvalidInput, match="group column"):
        build_plan(frame, request(target="label", validation="group_kfold"))


def with_findings(frame, target: str, *findings: tuple[str, str, str]) -> Verdict:
    """The judge's verdict on ``frame`` plus findings (kind, column, severity) it did not make."""
    verdict = judge(frame, target)
    for kind, column, severity in findings:
        verdict.warnings.append(
            ProfileWarning(kind=kind, column=column, severity=severity, message=f"{kind} here")
        )
    return verdict


def test_profile_warnings_drop_columns() -> None:
    frame = mixed_classification(rows=300)
    verdict = with_findings(
        frame, "label", ("identifier", "x1", "medium"), ("heavy_missing", "x2", "medium")
    )
    plan = build_plan(frame, request(target="label"), verdict)
    assert "x1" not in plan.feature_names and "x2" in plan.feature_names
    assert "identifier" in {d.name: d.reason for d in plan.dropped}["x1"]
    kept = build_plan(frame, request(target="label", keep_columns=["x1"]), verdict)
    assert "x1" in kept.feature_names
    assert any(d.decision == "keep x1" for d in kept.decisions)


def test_a_graded_leak_is_dropped_when_high_and_warned_when_medium() -> None:
    frame = mixed_classification(rows=300)
    verdict = with_findings(frame, "label", ("leakage", "x1", "high"), ("leakage", "x2", "medium"))
    plan = build_plan(frame, request(target="label"), verdict)
    assert "x1" not in plan.feature_names and "x2" in plan.feature_names
    assert plan.warnings == ["leakage here", "leakage here"]  # the dropped and the kept one
    assert any(d.decision == "keep x2 (warned)" for d in plan.decisions)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"target": "label", "positive_class": "maybe"}, "positive_class"),
        ({"target": "label", "task": "binary", "models": ["nope"]}, "Unknown model family"),
        ({"target": "label", "exclude_columns": ["ghost"]}, "exclude_columns"),
        ({"target": "label", "group_column": "ghost"}, "not in the dataset"),
        ({"task": "binary"}, "needs a target"),
        ({"target": "label", "metric": "r2"}, "does not apply"),
    ],
)
def test_bad_requests_are_rejected_with_a_next_step(fields: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as error:
        build_plan(mixed_classification(rows=100), request(**fields))
    assert error.value.next_step


def test_binary_task_with_three_classes_is_rejected() -> None:
    frame = mixed_classification(rows=200, classes=3)
    with pytest.raises(InvalidInput, match="3 classes"):
        build_plan(frame, request(target="label", task="binary"))


def test_a_small_memory_limit_caps_the_search_rows() -> None:
    frame = mixed_classification(rows=20000)
    plan = build_plan(frame, request(target="label", max_memory_mb=256))
    assert plan.max_search_rows is None or plan.max_search_rows < 20000
    huge = build_plan(frame.assign(blob="x" * 4000), request(target="label", max_memory_mb=256))
    assert huge.max_search_rows is not None and huge.max_search_rows < 20000
    assert any(d.stage == "memory" for d in huge.decisions)

"""The training report: the evaluation plots (masked) and the model card."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from engine_fixtures import mixed_classification

from mltrainer.state.errors import InternalError
from mltrainer.state.masking import Masker
from mltrainer.tools.training import plots
from mltrainer.tools.training.planner import build_plan
from mltrainer.tools.training.request import TrainRequest
from mltrainer.tools.training.results import AutoMLResult, HoldoutFrame, SeriesPlot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NO_SECRETS = Masker()
SECRET = "label-Qx81vT0pLz"


def assert_png(data: bytes) -> tuple[int, int]:
    from PIL import Image

    assert data.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        assert image.width > 100 and image.height > 100
        return image.size


def result_of(task: str, held: HoldoutFrame | None, **fields: object) -> AutoMLResult:
    """An engine result around ``held`` (the plots read only the holdout and the classes)."""
    plan = build_plan(
        mixed_classification(rows=60), TrainRequest(dataset="d", target="label", time_budget_s=5)
    )
    values: dict[str, object] = dict(
        estimator=None,
        task=task,
        metric="accuracy",
        greater_is_better=True,
        target="label",
        features=["x1"],
        plan=plan,
        decisions=[],
        leaderboard=[],
        cv_mean=None,
        cv_std=None,
        holdout={},
        feature_importance=[],
        holdout_frame=held,
        dropped_columns=[],
        seed=0,
    )
    values.update(fields)
    return AutoMLResult.model_validate(values)


def binary_holdout(positive: str = "yes") -> tuple[HoldoutFrame, list[str]]:
    rng = np.random.default_rng(0)
    classes = sorted(["no", positive])
    y_true = rng.choice(classes, size=200)
    p_pos = np.clip((y_true == positive) * 0.6 + rng.random(200) * 0.4, 0, 1)
    proba = np.column_stack([1 - p_pos, p_pos] if classes[1] == positive else [p_pos, 1 - p_pos])
    y_pred = np.where(p_pos > 0.5, positive, "no")
    return HoldoutFrame(y_test=y_true, y_pred=y_pred, proba=proba), classes


# --- plots ------------------------------------------------------------------------------------


def test_binary_plots_are_pngs() -> None:
    held, classes = binary_holdout()
    result = result_of(
        "binary",
        held,
        classes=classes,
        positive_class="yes",
        feature_importance=[("a", 0.5), ("b", 0.3), ("c", 0.2)],
    )
    images = plots.plots_for_result(result, NO_SECRETS)
    assert set(images) == {"confusion_matrix.png", "roc.png", "feature_importance.png"}
    for data in images.values():
        assert_png(data)


def test_a_class_label_equal_to_a_secret_is_drawn_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every text on every figure is masked when the PNG is rendered (a spy on the real
    renderer reads what each figure finally holds)."""
    from matplotlib.text import Text

    from mltrainer.tools import plotting

    drawn: list[str] = []

    def render_and_read(figure, masker, **savefig):
        png = plotting.render_png(figure, masker, **savefig)
        drawn.extend(t.get_text() for t in figure.findobj(Text))
        for axes in figure.axes:
            drawn.extend(t.get_text() for t in axes.get_xticklabels() + axes.get_yticklabels())
        return png

    monkeypatch.setattr(plots, "render_png", render_and_read)
    held, classes = binary_holdout(positive=SECRET)
    result = result_of(
        "binary",
        held,
        classes=classes,
        positive_class=SECRET,
        feature_importance=[(SECRET, 0.7), ("x1", 0.3)],
    )
    images = plots.plots_for_result(result, Masker({"KEY": SECRET}))

    assert set(images) == {"confusion_matrix.png", "roc.png", "feature_importance.png"}
    assert drawn and not [text for text in drawn if SECRET in text]
    assert any("***KEY***" in text for text in drawn)


def test_multiclass_plots_draw_every_class() -> None:
    classes = [f"c{i}" for i in range(12)]
    rng = np.random.default_rng(1)
    y_true = rng.choice(classes, size=300)
    proba = rng.dirichlet(np.ones(len(classes)), size=300)
    y_pred = np.asarray(classes)[proba.argmax(axis=1)]
    held = HoldoutFrame(y_test=y_true, y_pred=y_pred, proba=proba)
    images = plots.plots_for_result(result_of("multiclass", held, classes=classes), NO_SECRETS)
    assert set(images) == {"confusion_matrix.png", "roc.png"}
    for data in images.values():
        assert_png(data)


def test_regression_forecast_and_clustering_plots() -> None:
    rng = np.random.default_rng(2)
    actual = rng.normal(size=150)
    held = HoldoutFrame(y_test=actual, y_pred=actual + rng.normal(size=150))
    residuals = plots.plots_for_result(result_of("regression", held), NO_SECRETS)
    assert set(residuals) == {"residuals.png"}
    width, height = assert_png(residuals["residuals.png"])
    assert width > height  # two panels side by side

    series = SeriesPlot(
        label="sales",
        history_times=pd.date_range("2024-01-01", periods=60, freq="D").to_numpy(),
        history=np.sin(np.arange(60) / 5),
        forecast_times=pd.date_range("2024-03-01", periods=14, freq="D").to_numpy(),
        forecast=np.sin(np.arange(60, 74) / 5),
        actual=np.sin(np.arange(60, 74) / 5) + 0.1,
    )
    forecast = plots.plots_for_result(
        result_of("forecast", HoldoutFrame(series=[series], n_series=1)), NO_SECRETS
    )
    assert_png(forecast["forecast.png"])

    held = HoldoutFrame(y_pred=rng.integers(0, 4, size=100))
    clusters = plots.plots_for_result(result_of("clustering", held), NO_SECRETS)
    assert_png(clusters["cluster_sizes.png"])


def test_plots_leave_out_what_lacks_inputs() -> None:
    assert plots.plots_for_result(result_of("binary", None, classes=["a", "b"]), NO_SECRETS) == {}
    partial = HoldoutFrame(y_test=np.array([1.0, 2.0]))
    assert plots.plots_for_result(result_of("regression", partial), NO_SECRETS) == {}
    assert plots.plots_for_result(result_of("forecast", HoldoutFrame()), NO_SECRETS) == {}


def short_series() -> SeriesPlot:
    return SeriesPlot(
        label="s", history_times=np.arange(2), history=np.ones(1),
        forecast_times=np.arange(1), forecast=np.ones(1),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: plots.roc_png(["a", "b"], np.ones((2, 3)), ["a", "b"], m), "one column per"),
        (lambda m: plots.roc_png(["a", "b"], np.ones((2, 2)), ["a", "b"], m, "z"), "positive"),
        (lambda m: plots.residuals_png([1.0, 2.0], [1.0], m), "same length"),
        (lambda m: plots.residuals_png([], [], m), "non-empty"),
        (lambda m: plots.confusion_matrix_png([], [], [], m), "at least one class"),
        (lambda m: plots.cluster_sizes_png([], m), "no cluster labels"),
        (lambda m: plots.feature_importance_png([], m), "no feature importance"),
        (lambda m: plots.forecast_png(short_series(), m), "as long as its values"),
        (lambda m: plots.forecast_panels_png([], 0, m), "no series"),
    ],
)
def test_inconsistent_plot_data_is_an_internal_error_not_bad_input(call, message: str) -> None:
    """The engine hands these functions their data: a mismatch is a bug, never the caller's."""
    from mltrainer.state.errors import InvalidInput

    with pytest.raises(InternalError, match=message) as raised:
        call(NO_SECRETS)
    assert not isinstance(raised.value, InvalidInput)


def test_roc_skips_a_class_absent_from_the_holdout() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    assert_png(plots.roc_png(["a", "b", "a"], proba, ["a", "b", "c"], NO_SECRETS))


def test_roc_of_many_classes_draws_the_ones_separated_worst() -> None:
    """Beyond MAX_CURVES classes the plot keeps the curves that say where the model is weak
    (26 curves could not be told apart, and took most of the plot's time to draw)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    classes = [f"c{i:02d}" for i in range(26)]
    truth = rng.integers(0, 26, 2600)
    # Class i's own column is noisier the larger i is: the last classes are separated worst.
    noise = np.linspace(0.1, 3.0, 26)
    proba = rng.normal(size=(2600, 26)) * noise + np.eye(26)[truth]
    curves, total = plots.roc_curves(np.asarray(classes)[truth], proba, classes)
    assert total == 26
    assert len(curves) == plots.MAX_CURVES
    aucs = {c: roc_auc_score(truth == i, proba[:, i]) for i, c in enumerate(classes)}
    worst = sorted(classes, key=aucs.__getitem__)[: plots.MAX_CURVES]
    assert [c.label for c in curves] == worst
    assert [c.auc for c in curves] == pytest.approx([aucs[c] for c in worst])
    assert not set(worst) & set(classes[:10])  # the cleanest columns are not among them
    assert_png(plots.roc_png(np.asarray(classes)[truth], proba, classes, NO_SECRETS))


def test_roc_of_a_binary_target_is_the_positive_class() -> None:
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    curves, total = plots.roc_curves(["n", "y", "n", "y"], proba, ["n", "y"], "y")
    assert (total, [c.label for c in curves], curves[0].auc) == (1, ["y"], 1.0)

"""What a finished training leaves for people: plots, a model card, and a standalone predict.py.

Everything here takes plain values (arrays, lists, a small pydantic summary), so it works for any
trainer. Plots are PNG bytes drawn with matplotlib's Agg canvas (no pyplot, no global state).
"""

from __future__ import annotations

import importlib.util
import io
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from pydantic import BaseModel, Field

from mltrainer.state.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    # A column of values: a list, a numpy array or a pandas Series.
    Vector: TypeAlias = Sequence[Any] | np.ndarray | pd.Series | pd.Index

CUSTOM_MODULE = "mltrainer.tools.training.engine.custom"
MAX_CLASSES_DRAWN = 30
MAX_FEATURES_DRAWN = 20

PIPELINE_TAGS = {
    "binary": "tabular-classification",
    "multiclass": "tabular-classification",
    "regression": "tabular-regression",
    "forecast": "time-series-forecasting",
    "text_classification": "text-classification",
}

# ---------------------------------------------------------------------------------------------
# Plots


def _figure(width: float = 6.0, height: float = 4.5) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(figure: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _labels(values: Vector) -> list[str]:
    return [str(v) for v in values]


def confusion_matrix_png(y_true: Vector, y_pred: Vector, classes: Vector) -> bytes:
    """Counts per (true, predicted) class, shaded by the share of each true class."""
    import numpy as np
    from sklearn.metrics import confusion_matrix

    names = _labels(classes)
    if not names:
        raise InvalidInput("a confusion matrix needs at least one class")
    counts = confusion_matrix(_labels(y_true), _labels(y_pred), labels=names)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = min(4.0 + 0.35 * len(names), 12.0)
    figure = _figure(size + 1.0, size)
    ax = figure.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=ax, label="share of true class")
    ticks = range(len(names)) if len(names) <= MAX_CLASSES_DRAWN else []
    ax.set_xticks(list(ticks), [names[i] for i in ticks], rotation=45, ha="right")
    ax.set_yticks(list(ticks), [names[i] for i in ticks])
    if len(names) <= MAX_CLASSES_DRAWN:
        for (row, column), count in np.ndenumerate(counts):
            color = "white" if shares[row, column] > 0.5 else "black"
            ax.text(column, row, str(count), ha="center", va="center", color=color, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (holdout)")
    return _png(figure)


def roc_png(
    y_true: Vector,
    proba: Any,
    classes: Vector,
    positive_class: Any | None = None,
) -> bytes:
    """ROC curve of the positive class (binary) or one-vs-rest per class (multiclass).

    ``proba`` has one column per class, in the order of ``classes``.
    """
    import numpy as np
    from sklearn.metrics import roc_auc_score, roc_curve

    names = _labels(classes)
    scores = np.asarray(proba, dtype=float)
    truth = np.asarray(_labels(y_true))
    if scores.ndim != 2 or scores.shape[1] != len(names):
        raise InvalidInput(
            f"proba must have one column per class ({len(names)}); got shape {scores.shape}"
        )
    if len(names) == 2:
        positive = str(positive_class) if positive_class is not None else names[1]
        if positive not in names:
            raise InvalidInput(f"positive class {positive!r} is not one of the classes {names}")
        drawn = [positive]
    else:
        drawn = names[:MAX_CLASSES_DRAWN]
    figure = _figure()
    ax = figure.add_subplot()
    for name in drawn:
        column = scores[:, names.index(name)]
        hits = truth == name
        if hits.all() or not hits.any():
            continue  # ROC is undefined without both outcomes in the holdout
        fpr, tpr, _ = roc_curve(hits, column)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(hits, column):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC (holdout)" + ("" if len(names) == 2 else ", one vs rest"))
    ax.legend(loc="lower right", fontsize=8)
    return _png(figure)


def residuals_png(y_true: Vector, y_pred: Vector) -> bytes:
    """Predicted against actual, and residuals against predicted."""
    import numpy as np

    actual = np.asarray(y_true, dtype=float)
    predicted = np.asarray(y_pred, dtype=float)
    if actual.shape != predicted.shape or actual.size == 0:
        raise InvalidInput("y_true and y_pred must be non-empty and of the same length")
    residuals = actual - predicted
    figure = _figure(10.0, 4.5)
    left, right = figure.subplots(1, 2)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    left.scatter(actual, predicted, s=8, alpha=0.5)
    left.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1)
    left.set_xlabel("actual")
    left.set_ylabel("predicted")
    left.set_title("Predicted vs actual (holdout)")
    right.scatter(predicted, residuals, s=8, alpha=0.5)
    right.axhline(0.0, linestyle="--", color="grey", linewidth=1)
    right.set_xlabel("predicted")
    right.set_ylabel("actual − predicted")
    right.set_title("Residuals")
    return _png(figure)


def forecast_png(
    history_time: Vector,
    history: Vector,
    forecast_time: Vector,
    forecast: Vector,
    actual: Vector | None = None,
) -> bytes:
    """The series' history, the forecast beyond it, and the actual values where known."""
    import pandas as pd

    if len(history_time) != len(history) or len(forecast_time) != len(forecast):
        raise InvalidInput("each time axis must be as long as its values")
    if actual is not None and len(actual) != len(forecast):
        raise InvalidInput("actual must be as long as the forecast")
    figure = _figure(10.0, 4.5)
    ax = figure.add_subplot()
    ax.plot(pd.to_datetime(pd.Series(history_time)), list(history), label="history")
    future = pd.to_datetime(pd.Series(forecast_time))
    ax.plot(future, list(forecast), label="forecast", linestyle="--")
    if actual is not None:
        ax.plot(future, list(actual), label="actual", alpha=0.7)
    ax.set_title("History and forecast")
    ax.legend(loc="best", fontsize=8)
    figure.autofmt_xdate()
    return _png(figure)


def forecast_panels_png(panels: Sequence[Mapping[str, Any]], n_series: int) -> bytes:
    """History, forecast and actual values of a few series of a panel, one row each.

    Each panel holds ``label``, ``history`` and ``forecast`` as (times, values) pairs, and
    optionally ``actual`` (as long as the forecast).
    """
    import pandas as pd

    if not panels:
        raise InvalidInput("no series to draw")
    figure = _figure(10.0, 1.0 + 2.6 * len(panels))
    axes = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, panel in zip(axes, panels, strict=True):
        history_time, history = panel["history"]
        forecast_time, forecast = panel["forecast"]
        actual = panel.get("actual")
        if len(history_time) != len(history) or len(forecast_time) != len(forecast):
            raise InvalidInput("each time axis must be as long as its values")
        ax.plot(pd.to_datetime(pd.Series(history_time)), list(history), label="history")
        future = pd.to_datetime(pd.Series(forecast_time))
        ax.plot(future, list(forecast), label="forecast", linestyle="--")
        if actual is not None:
            if len(actual) != len(forecast):
                raise InvalidInput("actual must be as long as the forecast")
            ax.plot(future, list(actual), label="actual", alpha=0.7)
        ax.set_title(str(panel["label"]), fontsize=9)
        ax.legend(loc="best", fontsize=7)
    shown = len(panels)
    figure.suptitle(
        f"History and forecast: the {shown} series with the most points, of {n_series}"
        if n_series > shown
        else f"History and forecast of {n_series} series"
    )
    figure.autofmt_xdate()
    return _png(figure)


def cluster_sizes_png(labels: Vector) -> bytes:
    """How many rows each cluster holds."""
    import pandas as pd

    if len(labels) == 0:
        raise InvalidInput("no cluster labels to count")
    sizes = pd.Series(_labels(labels)).value_counts().sort_index()
    figure = _figure()
    ax = figure.add_subplot()
    ax.bar(sizes.index.tolist(), sizes.to_numpy())
    ax.set_xlabel("cluster")
    ax.set_ylabel("rows")
    ax.set_title(f"Cluster sizes ({len(sizes)} clusters)")
    return _png(figure)


def feature_importance_png(importance: Sequence[tuple[str, float]]) -> bytes:
    """The most important features, largest at the top."""
    if not importance:
        raise InvalidInput("no feature importance to draw")
    top = sorted(importance, key=lambda item: item[1], reverse=True)[:MAX_FEATURES_DRAWN]
    figure = _figure(7.0, 1.0 + 0.3 * len(top))
    ax: Axes = figure.add_subplot()
    ax.barh([name for name, _ in reversed(top)], [float(value) for _, value in reversed(top)])
    ax.set_xlabel("importance")
    ax.set_title("Feature importance")
    return _png(figure)


def plots(
    task: str,
    *,
    y_true: Vector | None = None,
    y_pred: Vector | None = None,
    proba: Any | None = None,
    classes: Vector | None = None,
    positive_class: Any | None = None,
    feature_importance: Sequence[tuple[str, float]] | None = None,
    history: tuple[Vector, Vector] | None = None,
    forecast: tuple[Vector, Vector] | None = None,
    series_panels: Sequence[Mapping[str, Any]] | None = None,
    n_series: int | None = None,
) -> dict[str, bytes]:
    """The plots that fit ``task``, as ``{file name: PNG bytes}``; what lacks its inputs is left out.

    ``history`` and ``forecast`` are (times, values) pairs for ``task="forecast"``; there ``y_true``,
    if given, holds the actual values over the forecast's times. A forecast of several series
    passes ``series_panels`` instead (see :func:`forecast_panels_png`) and ``n_series``.
    """
    images: dict[str, bytes] = {}
    if task in ("binary", "multiclass", "text_classification"):
        if y_true is not None and y_pred is not None and classes is not None:
            images["confusion_matrix.png"] = confusion_matrix_png(y_true, y_pred, classes)
        if y_true is not None and proba is not None and classes is not None:
            images["roc.png"] = roc_png(y_true, proba, classes, positive_class)
    elif task == "regression":
        if y_true is not None and y_pred is not None:
            images["residuals.png"] = residuals_png(y_true, y_pred)
    elif task == "forecast":
        if series_panels:
            images["forecast.png"] = forecast_panels_png(
                series_panels, n_series or len(series_panels)
            )
        elif history is not None and forecast is not None:
            images["forecast.png"] = forecast_png(*history, *forecast, actual=y_true)
    elif task == "clustering":
        if y_pred is not None:
            images["cluster_sizes.png"] = cluster_sizes_png(y_pred)
    else:
        raise InvalidInput(f"unknown task {task!r} for plots")
    if feature_importance:
        images["feature_importance.png"] = feature_importance_png(feature_importance)
    return images


def plots_for_result(result: Any) -> dict[str, bytes]:
    """The plots for a training result shaped like ``AutoMLResult`` (read by attribute).

    Uses ``task``, ``classes``, ``positive_class``, ``feature_importance`` and the
    ``holdout_frame`` dict: ``y_test``, ``y_pred``, ``proba``; for forecasts ``history`` and
    ``forecast`` as (times, values) pairs (or ``series_panels`` and ``n_series`` for several
    series); for clustering ``labels`` (or ``y_pred``).
    """
    frame: Mapping[str, Any] = getattr(result, "holdout_frame", None) or {}
    task = str(result.task)
    return plots(
        task,
        y_true=frame.get("y_test"),
        y_pred=frame.get("labels") if task == "clustering" else frame.get("y_pred"),
        proba=frame.get("proba"),
        classes=list(getattr(result, "classes", None) or []) or None,
        positive_class=getattr(result, "positive_class", None),
        feature_importance=list(getattr(result, "feature_importance", None) or []),
        history=frame.get("history"),
        forecast=frame.get("forecast"),
        series_panels=frame.get("series_panels"),
        n_series=frame.get("n_series"),
    )


# ---------------------------------------------------------------------------------------------
# Model card


class LeaderboardRow(BaseModel):
    name: str
    cv_mean: float | None = None
    cv_std: float | None = None
    fit_time_s: float | None = None


class CardInfo(BaseModel):
    """What the model card tells; plain values, filled from whatever trained the model."""

    model_name: str = Field(min_length=1)
    task: str
    target: str | None = None
    metric: str
    greater_is_better: bool = True
    features: list[str] = Field(default_factory=list)
    classes: list[str] = Field(default_factory=list)
    positive_class: str | None = None
    cv_mean: float | None = None
    cv_std: float | None = None
    holdout: dict[str, float] = Field(default_factory=dict)
    leaderboard: list[LeaderboardRow] = Field(default_factory=list)
    feature_importance: list[tuple[str, float]] = Field(default_factory=list)
    decisions: list[str] = Field(default_factory=list)
    dropped_columns: dict[str, str] = Field(default_factory=dict)
    dataset_name: str = "local dataset"
    dataset_ref: str | None = None
    dataset_rows: int | None = None
    dataset_columns: int | None = None
    dataset_hash: str | None = None
    seed: int | None = None
    library_versions: dict[str, str] = Field(default_factory=dict)
    instructions: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def card_info_for_result(result: Any, *, model_name: str, **dataset: Any) -> CardInfo:
    """A :class:`CardInfo` from a result shaped like ``AutoMLResult`` (read by attribute).

    ``dataset`` holds the ``CardInfo`` fields the result does not know: ``dataset_name``,
    ``dataset_ref``, ``dataset_rows``, ``dataset_columns``, ``dataset_hash``, ``instructions``.
    """

    def text(item: Any) -> str:
        if all(hasattr(item, name) for name in ("stage", "decision", "reason")):
            return f"{item.stage}: {item.decision} ({item.reason})"
        return str(item)

    dropped = {
        str(getattr(item, "name", item)): str(getattr(item, "reason", ""))
        for item in getattr(result, "dropped_columns", None) or []
    }
    return CardInfo(
        model_name=model_name,
        task=str(result.task),
        target=getattr(result, "target", None),
        metric=str(result.metric),
        greater_is_better=bool(getattr(result, "greater_is_better", True)),
        features=list(getattr(result, "features", None) or []),
        classes=[str(c) for c in getattr(result, "classes", None) or []],
        positive_class=getattr(result, "positive_class", None),
        cv_mean=getattr(result, "cv_mean", None),
        cv_std=getattr(result, "cv_std", None),
        holdout=dict(getattr(result, "holdout", None) or {}),
        leaderboard=[
            LeaderboardRow(
                name=str(getattr(row, "name", row)),
                cv_mean=getattr(row, "cv_mean", None),
                cv_std=getattr(row, "cv_std", None),
                fit_time_s=getattr(row, "fit_time_s", None),
            )
            for row in getattr(result, "leaderboard", None) or []
        ],
        feature_importance=list(getattr(result, "feature_importance", None) or []),
        decisions=[text(item) for item in getattr(result, "decisions", None) or []],
        dropped_columns=dropped,
        seed=getattr(result, "seed", None),
        library_versions=dict(getattr(result, "library_versions", None) or {}),
        **dataset,
    )


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _front_matter(info: CardInfo) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    pipeline_tag = PIPELINE_TAGS.get(info.task)
    results = [
        EvalResult(
            task_type=pipeline_tag or info.task,
            task_name=(pipeline_tag or info.task).replace("-", " ").title(),
            dataset_type=info.dataset_ref or "local",
            dataset_name=info.dataset_name,
            dataset_split="holdout",
            metric_type=name,
            metric_value=round(float(value), 6),
            metric_name=f"{name} (holdout)",
        )
        for name, value in info.holdout.items()
    ]
    tags = ["mltrainer", "skops", "sklearn", info.task]
    if pipeline_tag:
        tags.insert(0, pipeline_tag)
    data = ModelCardData(
        library_name="sklearn",
        pipeline_tag=pipeline_tag,
        tags=list(dict.fromkeys(tags)),
        model_name=info.model_name,
        eval_results=results or None,
    )
    return data.to_yaml()


def model_card(info: CardInfo) -> str:
    """A Hugging Face model card: YAML front matter (library, tags, model-index), then sections."""
    lines = ["---", _front_matter(info), "---", "", f"# {info.model_name}", ""]
    what = {
        "binary": f"predicts whether `{info.target}` is `{info.positive_class or 'positive'}`",
        "multiclass": f"predicts `{info.target}` among {len(info.classes)} classes",
        "text_classification": f"classifies text into `{info.target}`",
        "regression": f"predicts the number `{info.target}`",
        "forecast": f"forecasts `{info.target}` ahead of the last known date",
        "clustering": "assigns rows to clusters (no target)",
    }.get(info.task, f"predicts `{info.target}`")
    lines += [
        f"A {info.task} model that {what} from {len(info.features)} input columns, trained "
        f"automatically by mltrainer on {info.created_at:%Y-%m-%d}.",
        "",
        "## Intended use",
        "",
        f"Predictions for new rows shaped like the training data ({info.dataset_name}): the same "
        "columns, the same meaning and units, drawn from the same population. It is a statistical "
        "model fitted to that dataset, not a source of truth: check it on your own data before "
        "relying on it, and do not use it for decisions about people without a human review.",
        "",
        "## Training data",
        "",
        f"- Dataset: {info.dataset_name}"
        + (f" (`{info.dataset_ref}`)" if info.dataset_ref else ""),
    ]
    if info.dataset_rows is not None:
        lines.append(f"- Rows: {info.dataset_rows}; columns: {info.dataset_columns or '–'}")
    if info.dataset_hash:
        lines.append(f"- Data hash: `{info.dataset_hash}`")
    if info.target:
        lines.append(f"- Target: `{info.target}`")
    if info.classes:
        lines.append("- Classes: " + ", ".join(f"`{c}`" for c in info.classes))
    lines.append("- Input columns: " + (", ".join(f"`{f}`" for f in info.features) or "–"))
    for column, reason in info.dropped_columns.items():
        lines.append(f"- Dropped `{column}`: {reason}")
    lines += ["", "## Evaluation", ""]
    direction = "higher" if info.greater_is_better else "lower"
    if info.cv_mean is not None:
        lines.append(
            f"Cross-validated {info.metric} ({direction} is better): {_fmt(info.cv_mean)}"
            f" ± {_fmt(info.cv_std)}."
        )
    if info.holdout:
        lines += ["", "Held-out test split, untouched during training:", ""]
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {name} | {_fmt(value)} |" for name, value in info.holdout.items()]
    if info.leaderboard:
        lines += ["", "Candidates tried (cross-validated):", ""]
        lines += ["| model | CV mean | CV std | fit time (s) |", "|---|---|---|---|"]
        lines += [
            f"| {row.name} | {_fmt(row.cv_mean)} | {_fmt(row.cv_std)} | {_fmt(row.fit_time_s)} |"
            for row in info.leaderboard[:20]
        ]
    if info.feature_importance:
        top = sorted(info.feature_importance, key=lambda item: item[1], reverse=True)[:10]
        lines += ["", "Most important features: " + ", ".join(f"`{n}` ({v:.3g})" for n, v in top)]
    if info.decisions:
        lines += ["", "### Decisions made while training", ""]
        lines += [f"- {decision}" for decision in info.decisions]
    if info.instructions:
        lines += ["", f"Instructions given for this training: {info.instructions}"]
    lines += [
        "",
        "## Limitations",
        "",
        "- Scores come from one dataset; rows unlike it (new categories, shifted ranges, another "
        "period) can be predicted badly without warning.",
        "- Missing or renamed input columns make prediction fail; extra columns are ignored.",
        "- The model reflects the biases of its training data.",
    ]
    if info.task in ("binary", "multiclass", "text_classification"):
        lines.append(
            "- Class probabilities are the model's estimates and may be miscalibrated; check them "
            "before using them as risks."
        )
    lines += [
        "",
        "## How to use",
        "",
        "The folder holds `model.skops` (the fitted scikit-learn pipeline, in the skops format: no "
        "pickle), `meta.json` (task, input columns, classes) and `predict.py`, which needs only "
        "pandas, scikit-learn, skops (and xgboost if the model uses it):",
        "",
        "```bash",
        "pip install pandas scikit-learn skops xgboost",
        "python predict.py input.csv predictions.csv   # or .parquet",
        "```",
        "",
        "It writes a `prediction` column"
        + (" and one `proba_<class>` column per class" if info.classes else "")
        + ", one row per input row, in order. Where mltrainer is installed, its `predict` tool "
        "does the same; loading the file yourself with `skops.io.load(path, trusted=...)`, review "
        "the list that `skops.io.get_untrusted_types(file=path)` returns before trusting it.",
    ]
    if info.seed is not None or info.library_versions:
        lines += ["", "## Reproducibility", ""]
        if info.seed is not None:
            lines.append(f"- Seed: {info.seed}")
        lines += [f"- {name} {version}" for name, version in sorted(info.library_versions.items())]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Standalone predict.py

_PREDICT_TEMPLATE = '''\
#!/usr/bin/env python3
"""Predict with the model saved beside this file, without mltrainer installed.

    python predict.py input.csv output.csv      (CSV or Parquet, by file extension)

Needs pandas, numpy, scikit-learn and skops (and xgboost or pyarrow if the model or files need
them). Writes a `prediction` column and, for classifiers, one `proba_<class>` column per class,
one row per input row, in order. Generated by mltrainer on __CREATED__.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL_FILE = HERE / "model.skops"
META_FILE = HERE / "meta.json"

# Classes the model was built from, inlined so that this file needs nothing from mltrainer.
CUSTOM_MODULE = __CUSTOM_MODULE__
CUSTOM_SOURCE = __CUSTOM_SOURCE__

# Types the model file may contain; anything else is refused rather than loaded.
TRUSTED_PREFIXES = __TRUSTED_PREFIXES__


def register_custom_module() -> None:
    if not CUSTOM_SOURCE:
        return
    module = types.ModuleType(CUSTOM_MODULE)
    module.__file__ = str(HERE / "predict.py")
    sys.modules[CUSTOM_MODULE] = module  # before exec: dataclasses and pickling look it up
    exec(compile(CUSTOM_SOURCE, f"<{CUSTOM_MODULE}>", "exec"), module.__dict__)


def load_model():
    import skops.io

    register_custom_module()
    untrusted = skops.io.get_untrusted_types(file=MODEL_FILE)
    # Types recorded when the model was saved, if any: a file changed since then is refused.
    recorded = json.loads(META_FILE.read_text()).get("trusted_types")
    refused = [
        t
        for t in untrusted
        if not t.startswith(TRUSTED_PREFIXES) or (recorded is not None and t not in recorded)
    ]
    if refused:
        sys.exit(f"refusing to load {MODEL_FILE.name}: unexpected types {refused}")
    return skops.io.load(MODEL_FILE, trusted=untrusted)


def read_table(path: Path):
    import pandas as pd

    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path)


def write_table(frame, path: Path) -> None:
    if path.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def predict(model, meta: dict, rows):
    import numpy as np
    import pandas as pd

    features = meta.get("features") or list(rows.columns)
    missing = [name for name in features if name not in rows.columns]
    if missing:
        sys.exit(f"the input lacks columns the model needs: {missing}")
    X = rows[features]
    result = pd.DataFrame({"prediction": np.asarray(model.predict(X))})
    classes = meta.get("classes") or []
    if classes and hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(X))
        for index, name in enumerate(classes):
            result[f"proba_{name}"] = proba[:, index]
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="CSV or Parquet file with the input columns")
    parser.add_argument("output", type=Path, help="where to write predictions (CSV or Parquet)")
    args = parser.parse_args(argv)
    meta = json.loads(META_FILE.read_text())
    rows = read_table(args.input)
    result = predict(load_model(), meta, rows)
    write_table(result, args.output)
    print(f"wrote {len(result)} predictions to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

# functools.partial wraps a function that skops lists (and so checks) on its own.
DEFAULT_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "xgboost.", "functools.partial")


def custom_module_source(module_name: str = CUSTOM_MODULE) -> str | None:
    """The source of the engine's self-contained module of custom classes, if it exists."""
    try:
        spec = importlib.util.find_spec(module_name)
    except ModuleNotFoundError:
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin).read_text(encoding="utf-8")


def _python_literal(text: str) -> str:
    """``text`` as a Python string literal, kept readable (raw, triple-quoted) when that is exact."""
    if text and "'''" not in text and text.endswith("\n") and "\r" not in text:
        return "r'''" + text + "'''"
    return repr(text)


def predict_script(
    custom_source: str | None = None,
    *,
    custom_module: str = CUSTOM_MODULE,
    trusted_prefixes: Sequence[str] = (),
) -> str:
    """The text of a standalone ``predict.py`` for a folder holding model.skops and meta.json.

    ``custom_source`` defaults to the current source of ``custom_module``; it is inlined and
    registered under that module name before the model is loaded, so skops finds its classes.
    The model may hold only types under the trusted prefixes: numpy, scipy, scikit-learn,
    xgboost, the custom module, what that module declares in ``TRUSTED_PREFIXES``, and
    ``trusted_prefixes``.
    """
    declared: Sequence[str] = ()
    if custom_source is None:
        custom_source = custom_module_source(custom_module)
        if custom_source:
            # The engine's own list of what its model files may hold.
            module = importlib.import_module(custom_module)
            declared = getattr(module, "TRUSTED_PREFIXES", ())
    source = custom_source
    prefixes = tuple(dict.fromkeys([*DEFAULT_TRUSTED_PREFIXES, *declared, *trusted_prefixes]))
    if source:
        prefixes = (*prefixes, f"{custom_module}.")
    replacements = {
        "__CREATED__": f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}",
        "__CUSTOM_MODULE__": repr(custom_module),
        "__CUSTOM_SOURCE__": _python_literal(source or ""),
        "__TRUSTED_PREFIXES__": repr(prefixes),
    }
    # One pass, so that a marker-like string inside the inlined source is left alone.
    pattern = re.compile("|".join(re.escape(marker) for marker in replacements))
    return pattern.sub(lambda match: replacements[match.group(0)], _PREDICT_TEMPLATE)


def meta_json(
    task: str,
    features: Sequence[str],
    classes: Sequence[Any] = (),
    *,
    target: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The ``meta.json`` that predict.py reads beside the model."""
    meta = {
        "task": task,
        "target": target,
        "features": list(features),
        "classes": _labels(classes),
        **(extra or {}),
    }
    return json.dumps(meta, indent=2)

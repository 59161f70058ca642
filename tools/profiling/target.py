"""Target analysis: suggested targets, task inference, class balance, time axis.

The task inferred here is the one ``train_model(task="auto")`` trains (the planner acts on this
verdict), so ``profile_dataset`` and training never disagree about it.
"""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING

from mltrainer.tools.profiling.columns import (
    is_integer_valued,
    numeric_stats,
    parse_dates,
    top_values,
)
from mltrainer.tools.profiling.models import (
    ColumnProfile,
    TargetAnalysis,
    TargetSuggestion,
    TaskKind,
    TimeAxis,
)

if TYPE_CHECKING:
    import pandas as pd

    from mltrainer.state.masking import Masker

TARGET_NAMES = re.compile(
    r"^(target|label|labels|class|y|outcome|result|response|survived|churn|churned|default|"
    r"price|saleprice|sale_price|fraud|is_fraud|diagnosis|species|quality|rating|income|"
    r"status|sentiment|category|output|medv|charges|salary|exited|attrition)$",
    re.I,
)
TARGET_HINT = re.compile(r"target|label|class|outcome|price|churn|fraud|default", re.I)
MAX_CLASSES = 50
MAX_INT_CLASSES = 20
SERIES_MAX_FEATURES = 1  # a series with more features is a regression over dated rows


def infer_task(
    target: pd.Series,
    columns: dict[str, ColumnProfile],
    target_name: str,
    time_axis: TimeAxis | None,
) -> tuple[TaskKind, str]:
    """The task a target implies, with the reason."""
    import pandas as pd

    values = target.dropna()
    distinct = values.nunique()
    texts = [c.name for c in columns.values() if c.kind == "text" and c.name != target_name]
    features = [
        c
        for c in columns.values()
        if c.name != target_name and c.kind not in ("identifier", "constant")
    ]
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    is_classes = (
        distinct == 2 or not numeric or (is_integer_valued(values) and distinct <= MAX_INT_CLASSES)
    )
    if texts and is_classes and distinct <= MAX_CLASSES and len(features) <= len(texts) + 2:
        return "text_classification", (
            f"{distinct} classes predicted mainly from the free-text column '{texts[0]}'"
        )
    if distinct == 2:
        return "binary", "the target has exactly two values"
    if not is_classes:
        others = [c for c in features if time_axis is None or c.name != time_axis.column]
        if (
            is_series_axis(time_axis, len(target))
            and time_axis
            and time_axis.column != target_name
            and len(others) <= SERIES_MAX_FEATURES
        ):
            return "forecast", (
                f"a numeric target over the regular time axis '{time_axis.column}' "
                f"(step {time_axis.step}) with at most {SERIES_MAX_FEATURES} other feature"
            )
        return "regression", f"a numeric target with {distinct} distinct values"
    return "multiclass", f"{distinct} distinct classes"


def is_series_axis(axis: TimeAxis | None, n_rows: int) -> bool:
    """A regular date column with about one row per date: a time series, not dated events."""
    return bool(
        axis and axis.regular and axis.distinct >= 0.5 * n_rows and axis.gaps <= 0.1 * axis.distinct
    )


def analyse_target(
    frame: pd.DataFrame,
    name: str,
    columns: dict[str, ColumnProfile],
    time_axis: TimeAxis | None,
    masker: Masker | None = None,
) -> TargetAnalysis:
    import pandas as pd

    series = frame[name]
    values = series.dropna()
    task, reason = infer_task(series, columns, name, time_axis)
    analysis = TargetAnalysis(column=name, task=task, reason=reason, missing=columns[name].missing)
    if task in ("binary", "multiclass", "text_classification"):
        classes = top_values(values, limit=20, masker=masker)
        analysis.classes = classes
        analysis.n_classes = int(values.nunique())
        counts = values.value_counts()
        analysis.minority_ratio = round(float(counts.min() / max(len(values), 1)), 4)
    elif pd.api.types.is_numeric_dtype(values):
        analysis.stats = numeric_stats(values)
        skew = values.astype(float).skew()
        analysis.skew = round(float(skew), 3) if pd.notna(skew) else None
    return analysis


def suggest_targets(
    frame: pd.DataFrame, columns: dict[str, ColumnProfile], time_axis: TimeAxis | None
) -> list[TargetSuggestion]:
    """Up to three likely targets: conventional names first, then the last usable column."""
    usable = [c for c in columns.values() if c.kind in ("numeric", "categorical", "boolean")]
    scored: list[tuple[int, ColumnProfile, str]] = []
    last = list(columns)[-1] if columns else None
    for column in usable:
        if TARGET_NAMES.match(column.name):
            scored.append((3, column, "its name is a conventional target name"))
        elif TARGET_HINT.search(column.name):
            scored.append((2, column, "its name suggests a target"))
        elif column.name == last:
            scored.append((1, column, "it is the last column, where targets usually are"))
    scored.sort(key=lambda item: -item[0])
    suggestions = []
    for _, column, why in scored[:3]:
        task, reason = infer_task(frame[column.name], columns, column.name, time_axis)
        suggestions.append(
            TargetSuggestion(column=column.name, task=task, reason=f"{why}; {reason}")
        )
    return suggestions


def find_time_axis(frame: pd.DataFrame, columns: dict[str, ColumnProfile]) -> TimeAxis | None:
    """The most regular date column, with its frequency and gaps."""
    axes = []
    for column in columns.values():
        if column.kind != "datetime":
            continue
        axis = describe_dates(frame[column.name], column.name)
        if axis is not None:
            axes.append(axis)
    axes.sort(key=lambda a: (a.regular, a.distinct), reverse=True)
    return axes[0] if axes else None


def describe_dates(series: pd.Series, name: str) -> TimeAxis | None:
    import pandas as pd

    dates = series if pd.api.types.is_datetime64_any_dtype(series) else parse_dates(series)
    if dates is None:
        return None
    distinct = pd.Series(dates.dropna().unique()).sort_values().reset_index(drop=True)
    if len(distinct) < 3:
        return None
    diffs = distinct.diff().dropna()
    step = diffs.median()
    if step <= pd.Timedelta(0):
        return None
    regular_share = float((diffs == step).mean())
    frequency = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas 4 will return an offset: handled below
            inferred = pd.infer_freq(pd.DatetimeIndex(distinct.tail(1000)))
        frequency = getattr(inferred, "freqstr", inferred)
    except (TypeError, ValueError):
        frequency = None
    gaps = int(((diffs / step).round() - 1).clip(lower=0).sum())
    largest = diffs.max()
    return TimeAxis(
        column=name,
        start=str(distinct.iloc[0]),
        end=str(distinct.iloc[-1]),
        distinct=len(distinct),
        frequency=frequency,
        step=str(step),
        regular=frequency is not None or regular_share >= 0.8,
        gaps=gaps,
        largest_gap=str(largest) if largest > step else None,
    )

"""Does the target drift along a date column? What a random split would silently assume away.

A model given a raw timestamp learns the level of each period; under a random split it is
scored on rows from the very periods it learned, and looks excellent, yet it cannot carry that
into the future. The evidence compares, out of fold on random folds, how well the timestamp
alone predicts the target with how well its calendar alone does (month, weekday, ... : what
repeats and so extrapolates). A timestamp that explains clearly more (by DRIFT_GAIN) marks a
trend or regime changes; the planner then validates in time order. Features whose values move
between the earliest and the latest rows are listed as well (covariate drift).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mltrainer.tools.profiling.columns import parse_dates
from mltrainer.tools.profiling.leakage import (
    Target,
    evidence,
    make_target,
    on_threads,
    tree_oof,
)
from mltrainer.tools.profiling.models import (
    ColumnProfile,
    ProfileWarning,
    TargetAnalysis,
    TimeAxis,
    TimeDrift,
)

if TYPE_CHECKING:
    import pandas as pd

MIN_DISTINCT = 24  # fewer distinct dates: an attribute (a model year), not a time axis
MIN_ROWS = 200  # fewer labelled rows: too noisy to tell drift from chance
DRIFT_GAIN = 0.05  # what the timestamp explains beyond its calendar
FEATURE_GAIN = 0.3  # the same for a feature: only strong covariate drift counts
SAMPLE_ROWS = 5000
MAX_FEATURES = 30


def calendar_parts(step: pd.Timedelta) -> list[str]:
    """The calendar features that vary at this spacing of dates (and repeat, so extrapolate)."""
    import pandas as pd

    parts = []
    if step < pd.Timedelta(days=1):
        parts.append("hour")
    if step < pd.Timedelta(days=7):
        parts += ["weekday", "day"]
    if step < pd.Timedelta(days=28):
        parts.append("dayofyear")
    if step < pd.Timedelta(days=365):
        parts.append("month")
    return parts


def calendar_matrix(stamps: pd.Series, parts: list[str]) -> np.ndarray:
    accessor = stamps.dt
    values = {
        "hour": accessor.hour,
        "weekday": accessor.day_of_week,
        "day": accessor.day,
        "dayofyear": accessor.day_of_year,
        "month": accessor.month,
    }
    if not parts:
        return np.zeros((len(stamps), 1))
    return np.column_stack([np.asarray(values[p], dtype=float) for p in parts])


def chance(target: Target) -> float:
    """The score of a model that knows nothing, in the target's measure."""
    if target.task == "binary":
        return 0.5
    if target.task == "multiclass":
        return 1.0 / len(target.labels)
    return 0.0


def stamps_of(series: pd.Series) -> pd.Series | None:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series):
        return series
    return parse_dates(series)


def time_drift(
    frame: pd.DataFrame,
    axis: TimeAxis,
    target: TargetAnalysis,
    columns: dict[str, ColumnProfile],
    seed: int = 0,
) -> TimeDrift | None:
    """The drift evidence along ``axis``; None when it has too few dates or rows to judge."""
    import pandas as pd

    if axis.distinct < MIN_DISTINCT or axis.column == target.column:
        return None
    stamps = stamps_of(frame[axis.column])
    if stamps is None:
        return None
    stamps = stamps.dt.tz_localize(None) if stamps.dt.tz is not None else stamps
    known = (frame[target.column].notna() & stamps.notna()).to_numpy()
    data, stamps = frame.loc[known], stamps[known]
    if len(data) > SAMPLE_ROWS:
        rows = data.sample(n=SAMPLE_ROWS, random_state=seed).index
        data, stamps = data.loc[rows], stamps.loc[rows]
    data, stamps = data.reset_index(drop=True), stamps.reset_index(drop=True)
    if len(data) < MIN_ROWS:
        return None
    encoded = make_target(data[target.column], target.task, seed)
    if encoded is None:
        return None
    epoch = ((stamps - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).to_numpy(float)
    parts = calendar_parts(pd.Timedelta(axis.step))
    timestamp = evidence(tree_oof(epoch.reshape(-1, 1), encoded, seed), encoded)
    calendar = evidence(tree_oof(calendar_matrix(stamps, parts), encoded, seed), encoded)
    shifted = shifted_features(data, epoch, parts, stamps, columns, target.column, axis, seed)
    gain = timestamp - max(calendar, chance(encoded))
    drifts = gain >= DRIFT_GAIN or bool(shifted)
    names = {"roc_auc": "AUC", "balanced_accuracy": "balanced accuracy", "r2": "R²"}
    measure = names[encoded.measure]
    calendar_text = ", ".join(parts) if parts else "none at this spacing"
    reason = (
        f"the timestamp alone predicts the target with {measure} {timestamp:.3f} on random "
        f"folds, its calendar ({calendar_text}) {calendar:.3f}"
    )
    if shifted:
        reason += f"; features that move with time: {', '.join(shifted[:5])}"
    return TimeDrift(
        column=axis.column,
        drifts=drifts,
        measure=encoded.measure,
        timestamp_score=round(timestamp, 4),
        calendar_score=round(calendar, 4),
        gain=round(gain, 4),
        shifted_features=shifted,
        reason=reason,
    )


def shifted_features(
    data: pd.DataFrame,
    epoch: np.ndarray,
    parts: list[str],
    stamps: pd.Series,
    columns: dict[str, ColumnProfile],
    target: str,
    axis: TimeAxis,
    seed: int,
) -> list[str]:
    """Numeric features that the timestamp explains far better than the calendar does."""
    import pandas as pd
    from sklearn.model_selection import KFold

    calendar = calendar_matrix(stamps, parts)
    folds = list(KFold(n_splits=3, shuffle=True, random_state=seed).split(epoch))
    names = [
        c.name
        for c in columns.values()
        if c.kind == "numeric" and c.name not in (target, axis.column)
    ]

    def shifted(name_and_values: tuple[str, pd.Series]) -> str | None:
        name, column = name_and_values
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        known = ~np.isnan(values)
        if known.sum() < 100 or np.nanstd(values) == 0:
            return None
        feature = Target("regression", values[known], [], _restricted(folds, known))
        by_time = evidence(tree_oof(epoch[known].reshape(-1, 1), feature, seed), feature)
        by_calendar = evidence(tree_oof(calendar[known], feature, seed), feature)
        return name if by_time - by_calendar >= FEATURE_GAIN else None

    jobs = [(name, data[name]) for name in names[:MAX_FEATURES]]
    return [name for name in on_threads(shifted, jobs) if name is not None]


def _restricted(
    folds: list[tuple[np.ndarray, np.ndarray]], keep: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds over the rows in ``keep``, renumbered."""
    position = np.cumsum(keep) - 1
    return [(position[tr[keep[tr]]], position[va[keep[va]]]) for tr, va in folds]


def drift_warning(drift: TimeDrift | None, axis: TimeAxis | None) -> ProfileWarning | None:
    """What the profile says about the time axis: drift found, or what a random split assumes."""
    if axis is None:
        return None
    if drift is None:
        if axis.distinct >= MIN_DISTINCT:
            return None  # too few labelled rows to judge: nothing useful to say
        return ProfileWarning(
            kind="random_split",
            column=axis.column,
            severity="low",
            message=f"'{axis.column}' has only {axis.distinct} distinct dates: it is used as an "
            "attribute and rows are split at random, which assumes new rows come from the same "
            f"periods. To validate on the latest dates instead, pass time_column='{axis.column}'.",
        )
    if drift.drifts:
        return ProfileWarning(
            kind="time_drift",
            column=axis.column,
            severity="medium",
            message=f"The target drifts along '{axis.column}' ({drift.reason}). Training "
            "validates in time order (the latest rows held out) and uses the date only through "
            "its calendar, so the scores say how the model does on later rows. Pass "
            "validation='kfold' (or 'stratified_kfold') to split at random anyway.",
            evidence=drift.gain,
            measure=f"{drift.measure} of the timestamp beyond its calendar",
        )
    return ProfileWarning(
        kind="random_split",
        column=axis.column,
        severity="low",
        message=f"No drift of the target along '{axis.column}' beyond its calendar "
        f"({drift.reason}): rows are split at random, which assumes it stays so. Pass "
        f"time_column='{axis.column}' to validate on the latest rows instead.",
        evidence=drift.gain,
        measure=f"{drift.measure} of the timestamp beyond its calendar",
    )

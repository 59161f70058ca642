"""The planner's columns: which become features, and how, from the judge's verdict.

The planner never judges a column itself: kinds, identifiers, constants and leaks come from the
profile's :class:`~mltrainer.tools.profiling.judge.Verdict` (the same one ``profile_dataset``
shows). Here the verdict becomes the plan: dropped columns with the finding as the reason, a
medium-severity leak kept with a warning, the caller's ``exclude_columns`` and ``keep_columns``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mltrainer.tools.profiling import ColumnProfile, Verdict
from mltrainer.tools.profiling.columns import profile_column
from mltrainer.tools.training.plan import ColumnKind, ColumnPlan, DroppedColumn
from mltrainer.tools.training.request import TrainRequest

if TYPE_CHECKING:
    import pandas as pd

LOW_CARDINALITY = 32
# Records one decision: (stage, decision, reason).
Decide = Callable[[str, str, str], None]


def plan_kind(column: ColumnProfile, series: pd.Series) -> ColumnKind:
    """How the engine encodes a column the judge typed as ``column.kind``."""
    import pandas as pd

    numeric = pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
    if column.kind in ("numeric", "boolean", "identifier", "constant") and numeric:
        return "numeric"
    if column.kind == "datetime":
        return "datetime"
    if column.kind == "text":
        return "text"
    return "categorical" if column.cardinality <= LOW_CARDINALITY else "high_cardinality"


def verdict_column(frame: pd.DataFrame, name: str, verdict: Verdict) -> ColumnProfile:
    """The judge's profile of a column; one the verdict lacks is judged now, the same way."""
    known = verdict.column(name)
    if known is not None:
        return known
    series = frame[name]
    return profile_column(name, series, int(series.isna().sum()), len(frame))


def plan_columns(
    frame: pd.DataFrame,
    request: TrainRequest,
    verdict: Verdict,
    skip: set[str | None],
    time_axis: str | None,
    decide: Decide,
) -> tuple[list[ColumnPlan], list[DroppedColumn], list[str]]:
    """The feature columns, the dropped ones, and the warnings about kept suspicious columns."""
    dropped: list[DroppedColumn] = []
    warnings: list[str] = []

    def drop(name: str, reason: str) -> None:
        dropped.append(DroppedColumn(name=name, reason=reason))
        decide("columns", f"drop {name}", reason)

    target = request.target
    labelled = frame if target is None else frame[frame[target].notna()]
    columns: list[ColumnPlan] = []
    for raw in frame.columns:
        name = str(raw)
        if name in skip:
            continue
        if name in request.exclude_columns:
            drop(name, "excluded by the caller")
            continue
        finding = verdict.finding(name)
        kept = name in request.keep_columns
        if finding is not None and not kept:
            drop(name, f"the profile found {finding.kind}: {finding.message}")
            continue
        if finding is not None:
            decide(
                "columns", f"keep {name}", f"the caller asked, over the profile's {finding.kind}"
            )
        leak = verdict.about(name, "leakage")
        if leak is not None and not kept and leak.severity != "high":
            warnings.append(leak.message)
            decide("columns", f"keep {name} (warned)", leak.message)
        judged = verdict_column(frame, name, verdict)
        series = labelled[raw]
        columns.append(
            ColumnPlan(
                name=name,
                kind=plan_kind(judged, series),
                n_unique=judged.cardinality,
                missing_fraction=round(float(series.isna().mean()), 4) if len(series) else 0.0,
                time_axis=name == time_axis,
            )
        )
    return columns, dropped, warnings

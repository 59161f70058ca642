"""The planner's columns and target: which columns become features, and how, from the judge's
verdict; the time axis's calendar; rare classes and a heavy-tailed target.

The planner never judges a column itself: kinds, identifiers, constants and leaks come from the
profile's :class:`~mltrainer.tools.profiling.judge.Verdict` (the same one ``profile_dataset``
shows). Here the verdict becomes the plan: dropped columns with the finding as the reason, a
medium-severity leak kept with a warning, the caller's ``exclude_columns`` and ``keep_columns``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mltrainer.tools.profiling import ColumnProfile
from mltrainer.tools.profiling.columns import profile_column
from mltrainer.tools.profiling.judge import Verdict
from mltrainer.tools.training.plan import ColumnKind, ColumnPlan, DroppedColumn, TrainingPlan
from mltrainer.tools.training.request import TrainRequest

if TYPE_CHECKING:
    import pandas as pd

LOW_CARDINALITY = 32
SKEWED = 2.0  # a regression target this skewed gets transformed-target candidates
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


def time_features(plan: TrainingPlan, verdict: Verdict) -> None:
    """With a time axis, its calendar replaces the raw timestamp (which cannot extrapolate)."""
    import pandas as pd

    from mltrainer.tools.profiling.drift import calendar_parts

    axis = next((c for c in plan.columns if c.time_axis), None)
    if axis is None:
        return
    if axis.kind != "datetime":
        axis.time_axis = False  # a numeric order column: a feature like any other
        return
    found = verdict.time_axis
    step = found.step if found else "1 days"
    plan.calendar = calendar_parts(pd.Timedelta(step))
    why = (
        "a timestamp lets trees learn each period's level, which they cannot carry past the "
        "last date; calendar parts repeat, so they extrapolate"
    )
    if found and pd.Timestamp(found.end) - pd.Timestamp(found.start) >= pd.Timedelta(days=730):
        plan.calendar = ["year", *plan.calendar]
        why += (
            "; over two years or more the year is one too: a new year is read like the "
            "latest one (its regime carried forward), and time-ordered validation measures "
            "how well that holds"
        )
    parts = ", ".join(plan.calendar) or "none at this spacing"
    plan.decide("features", f"{axis.name}: calendar ({parts}), not the raw timestamp", why)
    plan.decide(
        "features",
        f"{axis.name}: elapsed days for linear models; trees try them as a variant",
        "a straight-line trend in time extrapolates; a tree reads a later date like the latest "
        "it saw (that period's regime carried forward), which the time-ordered validation "
        "keeps only where it holds on the latest rows",
    )
    others = [c.name for c in plan.columns if c.kind == "datetime" and not c.time_axis]
    for name in others:
        plan.decide(
            "features",
            f"{name}: days before {axis.name}, and its calendar",
            "an interval between two dates stays meaningful for later rows; an absolute date "
            "does not",
        )


def rare_and_skewed(plan: TrainingPlan, target: pd.Series | None, verdict: Verdict) -> None:
    from mltrainer.tools.profiling.checks import RARE_CLASS_ROWS

    if target is None:
        return
    if plan.classes:
        counts = target.dropna().astype(str).value_counts()
        rare = sorted(str(c) for c, n in counts.items() if n < RARE_CLASS_ROWS)
        if rare and len(rare) < len(plan.classes):
            plan.rare_classes = rare
            listed = ", ".join(f"{c!r} ({int(counts[c])} rows)" for c in rare[:10])
            plan.decide(
                "validation",
                f"{len(rare)} rare class(es) in every training fold, never held out",
                f"{listed}: fewer rows than folds, too few to stratify or to score; they are "
                "left out of fold stratification and of every reported score",
            )
    skew = verdict.target.skew if verdict.target else None
    if plan.task == "regression" and skew is not None and abs(skew) >= SKEWED:
        plan.target_transform = True
        plan.decide(
            "target",
            "also try candidates on a Yeo-Johnson transformed target",
            f"the target is heavy-tailed (skewness {skew:.1f}); a log/Box-Cox-like transform "
            "often fits such targets better, and the search compares both",
        )

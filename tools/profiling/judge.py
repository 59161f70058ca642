"""The one judge of a table's columns: kinds, the task, the time axis and its drift, and every
finding about a column (identifier, constant, graded leakage, skewed target, rare classes).

``profile_dataset`` shows this verdict and ``train_model`` acts on it (the training planner reads
a :class:`Verdict` and never judges a column itself), so the two cannot disagree. Training gets
the verdict of the job's profile stage, or judges the frame it was given the same way.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from mltrainer.state.masking import Masker
from mltrainer.tools.profiling.checks import (
    column_warnings,
    rare_class_warning,
    skew_warning,
    target_warnings,
)
from mltrainer.tools.profiling.columns import profile_column
from mltrainer.tools.profiling.drift import drift_warning, time_drift
from mltrainer.tools.profiling.leakage import leakage_warnings
from mltrainer.tools.profiling.models import (
    ColumnProfile,
    DatasetProfile,
    ProfileWarning,
    TargetAnalysis,
    TimeAxis,
    TimeDrift,
    drops_column,
)
from mltrainer.tools.profiling.target import analyse_target, find_time_axis

if TYPE_CHECKING:
    import pandas as pd

SEVERITY = {"high": 0, "medium": 1, "low": 2}


class Verdict(BaseModel):
    """What the judge decided about a table (with a target: about predicting it)."""

    columns: list[ColumnProfile]
    target: TargetAnalysis | None = None
    time_axis: TimeAxis | None = None
    drift: TimeDrift | None = None
    warnings: list[ProfileWarning] = Field(default_factory=list)

    @cached_property
    def columns_by_name(self) -> dict[str, ColumnProfile]:
        return {c.name: c for c in self.columns}

    def column(self, name: str) -> ColumnProfile | None:
        return self.columns_by_name.get(name)

    def finding(self, name: str) -> ProfileWarning | None:
        """The finding that drops this column from the features, if any."""
        return next((w for w in self.warnings if w.column == name and drops_column(w)), None)

    def about(self, name: str, kind: str) -> ProfileWarning | None:
        return next((w for w in self.warnings if w.column == name and w.kind == kind), None)


def verdict_of(found: DatasetProfile) -> Verdict:
    """The verdict a profile carries: what a training job's profile stage hands the planner."""
    return Verdict(
        columns=found.columns,
        target=found.target,
        time_axis=found.time_axis,
        drift=found.drift,
        warnings=found.warnings,
    )


def judge(
    frame: pd.DataFrame,
    target: str | None,
    *,
    n_rows: int | None = None,
    missing: dict[str, int] | None = None,
    masker: Masker | None = None,
    seed: int = 0,
) -> Verdict:
    """Judge every column of ``frame`` (all rows, or a uniform sample of ``n_rows``; ``missing``
    holds exact missing counts when the frame is a sample)."""
    total = n_rows if n_rows is not None else len(frame)
    counts = missing if missing is not None else frame.isna().sum().to_dict()
    columns = {
        str(name): profile_column(
            str(name), frame[name], int(counts.get(str(name), 0)), total, masker
        )
        for name in frame.columns
    }
    time_axis = find_time_axis(frame, columns)
    warnings = column_warnings(
        [c for c in columns.values() if c.name != target or c.kind == "constant"]
    )
    analysis = drift = None
    if target is not None:
        analysis = analyse_target(frame, target, columns, time_axis, masker)
        warnings += target_warnings(analysis, total)
        warnings += [w for w in (skew_warning(analysis),) if w]
        if analysis.classes:
            found = rare_class_warning(analysis, frame[target].dropna().value_counts())
            warnings += [found] if found else []
        warnings += leakage_warnings(frame, analysis, columns, seed)
        if time_axis is not None and analysis.task != "forecast":
            drift = time_drift(frame, time_axis, analysis, columns, seed)
            about_time = drift_warning(drift, time_axis)
            warnings += [about_time] if about_time else []
    warnings.sort(key=lambda w: SEVERITY[w.severity])
    return Verdict(
        columns=list(columns.values()),
        target=analysis,
        time_axis=time_axis,
        drift=drift,
        warnings=warnings,
    )

"""Warnings about the data that the planner acts on (besides leakage, in target.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mltrainer.tools.profiling.bad_rows import BadRows
from mltrainer.tools.profiling.models import ColumnProfile, ProfileWarning, TargetAnalysis

if TYPE_CHECKING:
    import pandas as pd

HEAVY_MISSING = 0.5
HIGH_CARDINALITY = 100
IMBALANCE = 0.1
SMALL_DATASET = 100
SKEWED = 2.0  # a target this skewed is heavy-tailed: a few values dominate squared errors
RARE_CLASS_ROWS = 5  # fewer rows than cross-validation folds: the class cannot be stratified


def column_warnings(columns: list[ColumnProfile]) -> list[ProfileWarning]:
    warnings = []
    for c in columns:
        if c.kind == "identifier":
            warnings.append(
                ProfileWarning(
                    kind="identifier",
                    column=c.name,
                    severity="medium",
                    message=f"'{c.name}' looks like a row identifier ({c.unique_ratio:.0%} "
                    "unique values); it carries no signal that generalises. Drop it.",
                )
            )
        elif c.kind == "constant":
            warnings.append(
                ProfileWarning(
                    kind="constant",
                    column=c.name,
                    severity="medium",
                    message=f"'{c.name}' has a single value"
                    + (f" ({c.examples[0]!r})" if c.examples else " (all missing)")
                    + "; it carries no information. Drop it.",
                )
            )
        elif c.kind == "categorical" and (
            c.cardinality >= HIGH_CARDINALITY or (c.cardinality >= 50 and c.unique_ratio >= 0.5)
        ):
            warnings.append(
                ProfileWarning(
                    kind="high_cardinality",
                    column=c.name,
                    severity="medium" if c.unique_ratio >= 0.5 else "low",
                    message=f"'{c.name}' has {c.cardinality} distinct categories: one-hot "
                    "encoding would explode; use target or frequency encoding, or group rare "
                    "values.",
                )
            )
        if c.missing_ratio >= HEAVY_MISSING and c.kind != "constant":
            warnings.append(
                ProfileWarning(
                    kind="heavy_missing",
                    column=c.name,
                    severity="high" if c.missing_ratio >= 0.9 else "medium",
                    message=f"'{c.name}' is missing in {c.missing_ratio:.0%} of rows; drop it "
                    "or add a missing-indicator feature.",
                )
            )
    return warnings


def count_duplicates(frame: pd.DataFrame) -> int:
    import pandas as pd

    try:
        hashes = pd.util.hash_pandas_object(frame, index=False)
    except TypeError:
        return int(frame.astype(str).duplicated().sum())
    return int(hashes.duplicated().sum())


def table_warnings(
    n_rows: int, duplicates: int, sampled: bool, sample_rows: int, bad: BadRows
) -> list[ProfileWarning]:
    warnings = []
    if duplicates:
        where = f" in a sample of {sample_rows} rows" if sampled else ""
        share = duplicates / max(sample_rows if sampled else n_rows, 1)
        warnings.append(
            ProfileWarning(
                kind="duplicate_rows",
                severity="medium" if share >= 0.01 else "low",
                message=f"{duplicates} duplicated row(s){where} ({share:.1%}): they inflate "
                "validation scores when copies land in both train and validation folds; "
                "deduplicate before training.",
            )
        )
    if bad.count:
        share = bad.count / max(n_rows + bad.count, 1)
        warnings.append(
            ProfileWarning(
                kind="ragged_rows",
                severity="high" if share >= 0.01 else "medium",
                message=f"{bad.describe()}. They were skipped; fix the file to keep them.",
            )
        )
    if n_rows < SMALL_DATASET:
        warnings.append(
            ProfileWarning(
                kind="small_dataset",
                severity="medium",
                message=f"Only {n_rows} rows: scores will be noisy; use repeated "
                "cross-validation and simple models.",
            )
        )
    return warnings


def target_warnings(target: TargetAnalysis, n_rows: int) -> list[ProfileWarning]:
    warnings = []
    if target.missing:
        warnings.append(
            ProfileWarning(
                kind="target_missing",
                column=target.column,
                severity="medium",
                message=f"The target '{target.column}' is missing in {target.missing} rows; "
                "they cannot be used for training (predict them later instead).",
            )
        )
    if target.minority_ratio is not None and target.minority_ratio < IMBALANCE:
        rarest = target.classes[-1].value if target.classes else "?"
        warnings.append(
            ProfileWarning(
                kind="class_imbalance",
                column=target.column,
                severity="high" if target.minority_ratio < 0.01 else "medium",
                message=f"The rarest class ({rarest!r}) is {target.minority_ratio:.1%} of rows: "
                "use stratified folds and a metric such as balanced accuracy, F1 or ROC AUC.",
            )
        )
    return warnings


def skew_warning(target: TargetAnalysis) -> ProfileWarning | None:
    if target.task != "regression" or target.skew is None or abs(target.skew) < SKEWED:
        return None
    return ProfileWarning(
        kind="skewed_target",
        column=target.column,
        severity="medium",
        message=f"The target '{target.column}' is heavy-tailed (skewness {target.skew:.1f}): a "
        "few extreme values dominate squared errors. Training adds candidates that learn a "
        "log/Box-Cox (Yeo-Johnson) transform of the target; metric='mae' weighs the typical row "
        "more than the extremes.",
        evidence=target.skew,
        measure="skewness",
    )


def rare_class_warning(target: TargetAnalysis, counts: pd.Series) -> ProfileWarning | None:
    """Classes with fewer rows than cross-validation has folds."""
    rare = counts[counts < RARE_CLASS_ROWS]
    if target.task not in ("binary", "multiclass", "text_classification") or rare.empty:
        return None
    listed = ", ".join(f"{str(label)!r} ({int(n)})" for label, n in rare.head(10).items())
    return ProfileWarning(
        kind="rare_classes",
        column=target.column,
        severity="medium",
        message=f"{len(rare)} class(es) have fewer than {RARE_CLASS_ROWS} rows: {listed}. They "
        "are too small to stratify or to score: training keeps them in every training fold and "
        "never holds them out, so no reported score covers them. Collect more examples, or "
        "merge them into a broader class.",
        evidence=float(rare.min()),
        measure="rows of the rarest class",
    )

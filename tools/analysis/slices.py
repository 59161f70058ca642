"""Slices where the model errs more than overall, with a significance check.

Candidate slices come from each column: one per frequent category value, one per quantile bin of
a numeric or date column, one for "missing" and one per frequent pattern of several columns
missing together. Each is tested against the rest of the rows -- Fisher's exact test on the
error counts (classification), a Mann-Whitney U test on the absolute errors (regression), both
one-sided -- and the p-values are corrected for the number of slices tested
(Benjamini-Hochberg). A slice below ``min_rows`` is not tested at all, so a handful of unlucky
rows cannot headline.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mltrainer.tools.analysis.models import Measure, Slice

if TYPE_CHECKING:
    import pandas as pd

ALPHA = 0.05
MIN_LIFT = 1.1  # a "worse" slice must be at least this much worse than overall to be flagged
MAX_SLICES = 10
MAX_VALUES_PER_COLUMN = 30
MAX_PATTERNS = 10
QUANTILE_BINS = 5
FEW_VALUES = 10  # a numeric column with at most this many values is sliced by value


def min_slice_rows(n: int) -> int:
    return max(10, math.ceil(0.01 * n))


@dataclass
class Candidate:
    slice: dict[str, object]  # the Slice fields that describe it
    mask: np.ndarray


@dataclass
class SliceReport:
    slices: list[Slice]
    tested: int
    min_rows: int


def find_slices(
    frame: pd.DataFrame,
    errors: np.ndarray,
    measure: Measure,
    kinds: dict[str, str],
    sensitive: Collection[str],
    residuals: np.ndarray | None = None,
) -> SliceReport:
    """The slices of ``frame``'s rows where ``errors`` (0/1, or absolute errors) are highest."""
    from scipy.stats import false_discovery_control

    n = len(errors)
    min_rows = min_slice_rows(n)
    overall = float(np.mean(errors)) if n else 0.0
    candidates = [c for c in candidates_of(frame, kinds, sensitive, min_rows) if _sized(c, n)]
    if not candidates or overall <= 0:
        return SliceReport(slices=[], tested=len(candidates), min_rows=min_rows)
    p_values = np.array([_p_value(errors, c.mask, measure) for c in candidates])
    adjusted = false_discovery_control(p_values, method="bh")
    slices = []
    for candidate, p, q in zip(candidates, p_values, adjusted, strict=True):
        inside, outside = errors[candidate.mask], errors[~candidate.mask]
        error = float(np.mean(inside))
        lift = error / overall
        bias = None
        if residuals is not None:
            bias = float(np.mean(residuals[candidate.mask]))
        slices.append(
            Slice.model_validate(
                {
                    **candidate.slice,
                    "rows": int(candidate.mask.sum()),
                    "share": round(float(candidate.mask.mean()), 4),
                    "measure": measure,
                    "error": error,
                    "error_outside": float(np.mean(outside)),
                    "lift": lift,
                    "bias": bias,
                    "p_value": float(p),
                    "p_adjusted": float(q),
                    "significant": bool(q < ALPHA and lift >= MIN_LIFT),
                }
            )
        )
    flagged = sorted((s for s in slices if s.significant), key=lambda s: (-s.lift, -s.rows))
    others = sorted(
        (s for s in slices if not s.significant and s.lift > 1), key=lambda s: s.p_adjusted
    )
    return SliceReport(
        slices=(flagged + others)[:MAX_SLICES], tested=len(candidates), min_rows=min_rows
    )


def _sized(candidate: Candidate, n: int) -> bool:
    """A slice is neither tiny nor (almost) every row."""
    size = int(candidate.mask.sum())
    return min_slice_rows(n) <= size <= n - min_slice_rows(n)


def _p_value(errors: np.ndarray, mask: np.ndarray, measure: Measure) -> float:
    from scipy.stats import fisher_exact, mannwhitneyu

    inside, outside = errors[mask], errors[~mask]
    if measure == "error_rate":
        wrong_in, wrong_out = int(inside.sum()), int(outside.sum())
        table = [[wrong_in, len(inside) - wrong_in], [wrong_out, len(outside) - wrong_out]]
        return float(fisher_exact(table, alternative="greater").pvalue)
    return float(mannwhitneyu(inside, outside, alternative="greater").pvalue)


def candidates_of(
    frame: pd.DataFrame, kinds: dict[str, str], sensitive: Collection[str], min_rows: int
) -> Iterator[Candidate]:
    """Every slice worth testing. A sensitive column is sliced only by its missingness: no
    value of it appears in the analysis."""
    hidden = set(sensitive)
    for name in frame.columns:
        column = frame[name]
        missing = column.isna().to_numpy()
        if missing.any():
            yield Candidate(
                {"description": f"{name} is missing", "kind": "missing", "columns": [name]},
                missing,
            )
        if name in hidden or missing.all():
            continue
        kind = kinds.get(str(name)) or infer_kind(column)
        if kind in ("categorical", "high_cardinality") or _few_values(column, kind):
            yield from _by_value(str(name), column, min_rows)
        elif kind == "numeric":
            yield from _by_range(str(name), column.astype(float), dates=False)
        elif kind == "datetime":
            yield from _by_range(str(name), _as_dates(column), dates=True)
    yield from _missing_patterns(frame, min_rows)


def infer_kind(column: pd.Series) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(column):
        return "categorical"
    if pd.api.types.is_numeric_dtype(column):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(column):
        return "datetime"
    return "categorical" if column.nunique() <= 50 else "high_cardinality"


def _few_values(column: pd.Series, kind: str) -> bool:
    return kind == "numeric" and column.nunique() <= FEW_VALUES


def _by_value(name: str, column: pd.Series, min_rows: int) -> Iterator[Candidate]:
    values = column.dropna().astype(str)
    counts = values.value_counts()
    counts = counts[counts >= min_rows].head(MAX_VALUES_PER_COLUMN)
    if len(counts) < 2 and len(values) == len(column):
        return  # a single value: the slice is every row
    text = column.astype(str).to_numpy()
    present = column.notna().to_numpy()
    for value in counts.index:
        yield Candidate(
            {
                "description": f"{name} = {value!r}",
                "kind": "category",
                "columns": [name],
                "value": str(value),
            },
            present & (text == value),
        )


def _by_range(name: str, values: pd.Series, *, dates: bool) -> Iterator[Candidate]:
    """Quantile bins: the first ``min ≤ x ≤ b``, the others ``a < x ≤ b``."""
    import pandas as pd

    numbers = values
    if dates:
        stamps = values.to_numpy(dtype="datetime64[ns]")
        numbers = pd.Series(np.where(values.notna(), stamps.astype("int64"), np.nan))
    try:
        bins = pd.qcut(numbers, QUANTILE_BINS, duplicates="drop")
    except (ValueError, IndexError):
        return
    show = _date if dates else _num
    for i, interval in enumerate(bins.cat.categories):
        low = float(numbers.min()) if i == 0 else float(interval.left)
        high = float(interval.right)
        sign = "≤" if i == 0 else "<"
        yield Candidate(
            {
                "description": f"{show(low)} {sign} {name} ≤ {show(high)}",
                "kind": "range",
                "columns": [name],
                "low": show(low) if dates else low,
                "high": show(high) if dates else high,
            },
            (bins == interval).to_numpy(),
        )


def _missing_patterns(frame: pd.DataFrame, min_rows: int) -> Iterator[Candidate]:
    """Rows where the same two or more columns are missing together."""
    missing = frame.isna()
    several = missing.sum(axis=1).to_numpy() >= 2
    if several.sum() < min_rows:
        return
    names = np.asarray([str(c) for c in frame.columns], dtype=object)
    keys = np.array(["\x1f".join(names[row]) for row in missing.to_numpy()], dtype=object)
    patterns, counts = np.unique(keys[several], return_counts=True)
    order = np.argsort(-counts, kind="stable")
    for index in order[:MAX_PATTERNS]:
        if counts[index] < min_rows:
            break
        columns = str(patterns[index]).split("\x1f")
        yield Candidate(
            {
                "description": f"missing together: {', '.join(columns)}",
                "kind": "missing_pattern",
                "columns": columns,
            },
            keys == patterns[index],
        )


def _as_dates(column: pd.Series) -> pd.Series:
    import pandas as pd

    return pd.to_datetime(column, errors="coerce", format="mixed")


def _date(value: float) -> str:
    import pandas as pd

    return str(pd.Timestamp(int(value)).date()) if math.isfinite(value) else "?"


def _num(value: float) -> str:
    return f"{value:.4g}"

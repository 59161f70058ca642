"""Per-column typing and statistics, computed on a (sampled) DataFrame."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mltrainer.state.masking import Masker
from mltrainer.tools.profiling.clip import clip
from mltrainer.tools.profiling.models import ColumnKind, ColumnProfile, NumericStats, ValueCount

if TYPE_CHECKING:
    import pandas as pd

BOOLEAN_TOKENS = frozenset(
    {"true", "false", "yes", "no", "y", "n", "t", "f", "0", "1", "0.0", "1.0"}
)
ID_NAME = re.compile(r"(^|[_\s.-])(id|uuid|guid|key|idx|index|row|record|no)$|^Unnamed: \d+$", re.I)
CAMEL_ID = re.compile(r"[a-z](Id|ID)$")
DATE_LIKE = re.compile(
    r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{4}-\d{2}|"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*[ .,-]+\d",
    re.I,
)
TEXT_MIN_WORDS = 5
TEXT_MIN_LENGTH = 40
SHAPE_SAMPLE = 5_000  # values enough to judge words and lengths
DATE_SAMPLE = 500  # distinct values enough to tell dates from other text
TOP_VALUES = 5
EXAMPLES = 3


def hashable(series: pd.Series) -> pd.Series:
    """Nested JSON values (dicts, lists) as strings, so they can be counted."""
    if series.dtype == object and series.map(lambda v: isinstance(v, dict | list)).any():
        import json

        return series.map(lambda v: json.dumps(v, default=str) if isinstance(v, dict | list) else v)
    return series


def is_integer_valued(values: pd.Series) -> bool:
    """``values`` (no missing ones) are whole numbers."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_integer_dtype(values):
        return True
    if pd.api.types.is_float_dtype(values):
        numbers = values.to_numpy(dtype=float)
        return bool(np.all(np.abs(numbers) < 2**53) and np.all(numbers == np.round(numbers)))
    return False


def looks_boolean(values: pd.Series, distinct: Sequence[Any]) -> bool:
    """Two distinct values (``distinct``, the column's ``unique()``) that read as a flag."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(values):
        return True
    if len(distinct) != 2:
        return False
    return {str(v).strip().lower() for v in distinct} <= BOOLEAN_TOKENS


def parse_dates(values: pd.Series, distinct: Sequence[Any] | None = None) -> pd.Series | None:
    """The values as datetimes when nearly all parse as dates; None otherwise. ``distinct``:
    their ``unique()``, when known (judged on the first 500, as text)."""
    import warnings

    import pandas as pd

    if distinct is None:
        distinct = values.unique()
    sample = pd.Series(distinct[:DATE_SAMPLE]).astype(str)
    if sample.str.contains(DATE_LIKE).mean() < 0.9:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    if parsed.notna().mean() < 0.95:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = pd.to_datetime(values, errors="coerce", format="mixed")
    return full if full.notna().mean() >= 0.95 else None


def id_like_name(name: str) -> bool:
    return bool(ID_NAME.search(name.strip()) or CAMEL_ID.search(name.strip()))


def is_row_number(values: pd.Series, n_rows: int) -> bool:
    """Increasing integers spanning about as many values as the file has rows."""
    if len(values) < 20 or not values.is_monotonic_increasing:
        return False
    span = float(values.max() - values.min()) + 1
    return 0.99 * n_rows <= span <= 1.01 * n_rows


def infer_kind(name: str, values: pd.Series, uniques: Sequence[Any], n_rows: int) -> ColumnKind:
    """The column's kind from its non-missing values and their ``unique()``."""
    import pandas as pd

    distinct = len(uniques)
    if distinct <= 1:
        return "constant"
    if looks_boolean(values, uniques):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "datetime"
    unique_ratio = distinct / len(values)
    many = len(values) >= 20 and unique_ratio >= 0.95
    if pd.api.types.is_numeric_dtype(values):
        if (
            many
            and is_integer_valued(values)
            and (id_like_name(name) or is_row_number(values, n_rows))
        ):
            return "identifier"
        return "numeric"
    if parse_dates(values, uniques) is not None:
        return "datetime"
    strings = values.sample(min(len(values), SHAPE_SAMPLE), random_state=0).astype(str)
    words = strings.str.count(" ").mean() + 1
    length = strings.str.len().mean()
    if words >= TEXT_MIN_WORDS or (length >= TEXT_MIN_LENGTH and unique_ratio > 0.5):
        return "text"
    if many or (unique_ratio >= 0.95 and id_like_name(name) and len(values) >= 20):
        return "identifier"
    return "categorical"


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else float(f"{number:.6g}")


def numeric_stats(values: pd.Series) -> NumericStats:
    """Summary statistics of ``values`` (no missing ones), as pandas computes them; on the
    array (pandas' own ``quantile`` costs milliseconds a call: seconds on a wide table)."""
    import numpy as np

    numbers = values.to_numpy(dtype=float)
    if not len(numbers):
        return NumericStats()
    with np.errstate(invalid="ignore", over="ignore"):  # infinities give None, below
        quantiles = np.quantile(numbers, [0.25, 0.5, 0.75])
        mean, std = numbers.mean(), numbers.std(ddof=1) if len(numbers) > 1 else np.nan
    return NumericStats(
        mean=_num(mean),
        std=_num(std),
        min=_num(numbers.min()),
        p25=_num(quantiles[0]),
        median=_num(quantiles[1]),
        p75=_num(quantiles[2]),
        max=_num(numbers.max()),
    )


SHOWN_CHARS = 60


def top_values(
    values: pd.Series, limit: int = TOP_VALUES, masker: Masker | None = None
) -> list[ValueCount]:
    """The most frequent values, shortened for display (masked before they are cut)."""
    counts = values.value_counts().head(limit)
    total = max(len(values), 1)
    return [
        ValueCount(value=clip(v, SHOWN_CHARS, masker), count=int(c), ratio=round(c / total, 4))
        for v, c in counts.items()
    ]


def profile_column(
    name: str, series: pd.Series, missing: int, n_rows: int, masker: Masker | None = None
) -> ColumnProfile:
    """Profile one column: ``missing`` and ``n_rows`` are exact; the rest comes from ``series``.
    Examples and top values are shortened, their secrets masked first."""
    import pandas as pd

    values = hashable(series).dropna()
    uniques = values.unique()  # once: the kind, the cardinality and the examples all need it
    kind = infer_kind(name, values, uniques, n_rows) if len(values) else "constant"
    if kind == "constant" and 0.01 <= missing / max(n_rows, 1) <= 0.99:
        kind = "boolean"  # one value or nothing: its presence is the information
    distinct = len(uniques)
    column = ColumnProfile(
        name=name,
        kind=kind,
        dtype=str(series.dtype),
        missing=missing,
        missing_ratio=round(missing / n_rows, 4) if n_rows else 0.0,
        cardinality=distinct,
        unique_ratio=round(distinct / len(values), 4) if len(values) else 0.0,
        examples=[clip(v, SHOWN_CHARS, masker) for v in uniques[:EXAMPLES]],
    )
    if pd.api.types.is_numeric_dtype(values) and kind in ("numeric", "identifier"):
        column.stats = numeric_stats(values)
    if kind in ("categorical", "boolean", "constant") or (kind == "numeric" and distinct <= 20):
        column.top_values = top_values(values, masker=masker)
    if kind in ("text", "categorical", "identifier") and not pd.api.types.is_numeric_dtype(values):
        shape = values.sample(min(len(values), SHAPE_SAMPLE), random_state=0)
        column.mean_length = round(float(shape.astype(str).str.len().mean()), 1)
    return column

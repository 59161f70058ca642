"""What a model knows of its training inputs, and the warnings ``predict`` gives from it.

Saved in ``meta.json`` with each model: per feature its kind and dtype, missing rate, numeric
(or date) range, and the categories seen -- as short sha256 digests, so no value of the training
data is written. ``predict`` compares the rows it is given and says, with counts and example
row numbers (0-based positions in the file), where the model is on unfamiliar ground: rows with
most features missing, values far outside the training range, categories never seen, columns
whose type changed, and forecast dates inside the history.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MAX_CATEGORIES = 1000
MOSTLY_MISSING = 0.5  # of a row's features
RANGE_MARGIN = 0.1  # of the training range, either side
UNSEEN_RATE = 0.01
EXAMPLES = 5

InputKind = Literal["numeric", "categorical", "datetime", "other"]
WarningKind = Literal[
    "mostly_missing", "out_of_range", "unseen_categories", "type_changed", "forecast_in_history"
]


class FeatureInput(BaseModel):
    name: str
    kind: InputKind
    dtype: str
    missing_rate: float
    low: float | None = Field(default=None, description="Minimum (dates: days since 1970).")
    high: float | None = None
    categories: list[str] = Field(
        default_factory=list, description="sha256 digests (12 hex) of the values seen."
    )
    complete: bool = Field(default=False, description="categories lists every value seen.")


class InputProfile(BaseModel):
    rows: int
    features: list[FeatureInput]


class PredictionWarning(BaseModel):
    kind: WarningKind
    message: str
    count: int = Field(description="Rows (or values) concerned.")
    rows: list[int] = Field(description="Example row numbers (0-based positions in the file).")
    columns: list[str] = Field(default_factory=list)


def digest(value: object) -> str:
    return hashlib.sha256(str(value).encode("utf-8", "replace")).hexdigest()[:12]


def _kind(series: pd.Series) -> InputKind:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "categorical"


def _days(series: pd.Series) -> pd.Series:
    import pandas as pd

    stamps = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
    return (stamps - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds() / 86400.0


def describe_inputs(frame: pd.DataFrame, features: list[str]) -> InputProfile:
    """The training rows' profile of ``features`` (the columns a model reads)."""
    out = []
    for name in features:
        series = frame[name]
        kind = _kind(series)
        entry = FeatureInput(
            name=name,
            kind=kind,
            dtype=str(series.dtype),
            missing_rate=round(float(series.isna().mean()), 4) if len(series) else 0.0,
        )
        values = series.dropna()
        if kind == "numeric" and len(values):
            numbers = values.astype(float)
            entry.low, entry.high = float(numbers.min()), float(numbers.max())
        elif kind == "datetime" and len(values):
            days = _days(values).dropna()
            if len(days):
                entry.low, entry.high = float(days.min()), float(days.max())
        elif kind == "categorical":
            distinct = values.unique()  # then text: a str per distinct value, not one per row
            entry.complete = len(distinct) <= MAX_CATEGORIES
            if entry.complete:
                entry.categories = sorted({digest(v) for v in distinct})
        out.append(entry)
    return InputProfile(rows=len(frame), features=out)


def coerce(profile: InputProfile | None, frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric training columns that arrive as text, as numbers (what does not parse: missing),
    so the model can predict them; ``check_inputs`` says how many did not parse."""
    import pandas as pd

    if profile is None:
        return frame
    out = frame
    for entry in profile.features:
        if entry.kind != "numeric" or entry.name not in frame.columns:
            continue
        if not pd.api.types.is_numeric_dtype(frame[entry.name]):
            out = out.copy() if out is frame else out
            out[entry.name] = pd.to_numeric(frame[entry.name], errors="coerce")
    return out


def check_inputs(profile: InputProfile | None, frame: pd.DataFrame) -> list[PredictionWarning]:
    """Warnings about ``frame`` (the rows to predict, in file order) against the training rows."""
    if profile is None:
        return []
    entries = [e for e in profile.features if e.name in frame.columns]
    if not entries:
        return []
    found = [
        _mostly_missing(frame, entries),
        _type_changed(frame, entries),
        _out_of_range(frame, entries),
        _unseen(frame, entries),
    ]
    return [w for w in found if w is not None]


def _examples(mask: np.ndarray) -> list[int]:
    import numpy as np

    return [int(i) for i in np.flatnonzero(mask)[:EXAMPLES]]


def _mostly_missing(frame: pd.DataFrame, entries: list[FeatureInput]) -> PredictionWarning | None:
    missing = frame[[e.name for e in entries]].isna().mean(axis=1).to_numpy()
    rows = missing > MOSTLY_MISSING
    if not rows.any() or len(entries) < 2:
        return None
    all_missing = int((missing >= 1.0).sum())
    return PredictionWarning(
        kind="mostly_missing",
        count=int(rows.sum()),
        rows=_examples(rows),
        message=f"{int(rows.sum())} row(s) have more than half of the model's "
        f"{len(entries)} features missing ({all_missing} have none at all): their predictions "
        "rest on imputed values and mostly repeat what is typical; do not trust them as you "
        "would the others.",
    )


def _type_changed(frame: pd.DataFrame, entries: list[FeatureInput]) -> PredictionWarning | None:
    import numpy as np
    import pandas as pd

    counts: dict[str, int] = {}
    rows = np.zeros(len(frame), dtype=bool)
    for entry in entries:
        series = frame[entry.name]
        if entry.kind == "numeric" and not pd.api.types.is_numeric_dtype(series):
            bad = (series.notna() & pd.to_numeric(series, errors="coerce").isna()).to_numpy()
        elif entry.kind == "datetime":
            bad = (series.notna() & _days(series).isna()).to_numpy()
        elif entry.kind == "categorical" and _kind(series) != "categorical":
            if series.notna().any():
                counts[entry.name] = 0  # numbers where text was: read as text, compared below
            continue
        else:
            continue
        if bad.any():
            counts[entry.name] = int(bad.sum())
            rows |= bad
    if not counts:
        return None
    listed = ", ".join(
        f"'{name}' ({n} value(s) that are not of its training type)"
        if n
        else f"'{name}' (now numbers, text in training)"
        for name, n in counts.items()
    )
    return PredictionWarning(
        kind="type_changed",
        count=int(rows.sum()),
        rows=_examples(rows),
        columns=list(counts),
        message=f"Columns whose type changed since training: {listed}. Values that do not parse "
        "are treated as missing.",
    )


def _out_of_range(frame: pd.DataFrame, entries: list[FeatureInput]) -> PredictionWarning | None:
    import numpy as np
    import pandas as pd

    counts: dict[str, int] = {}
    rows = np.zeros(len(frame), dtype=bool)
    for entry in entries:
        if entry.low is None or entry.high is None:
            continue
        series = frame[entry.name]
        if entry.kind == "datetime":
            values = _days(series).to_numpy(dtype=float)
        else:
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
        span = entry.high - entry.low
        margin = RANGE_MARGIN * (span if span > 0 else max(abs(entry.high), 1.0))
        outside = (values < entry.low - margin) | (values > entry.high + margin)
        if outside.any():
            counts[entry.name] = int(outside.sum())
            rows |= outside
    if not counts:
        return None
    listed = ", ".join(f"'{name}' ({n})" for name, n in counts.items())
    return PredictionWarning(
        kind="out_of_range",
        count=int(rows.sum()),
        rows=_examples(rows),
        columns=list(counts),
        message=f"{int(rows.sum())} row(s) have values far outside the training range (beyond "
        f"{RANGE_MARGIN:.0%} of it): {listed}. Tree models predict such values like the "
        "largest (or smallest) ones they saw; nothing was learnt there.",
    )


def _unseen(frame: pd.DataFrame, entries: list[FeatureInput]) -> PredictionWarning | None:
    import numpy as np

    rates: dict[str, tuple[int, float]] = {}
    rows = np.zeros(len(frame), dtype=bool)
    for entry in entries:
        if entry.kind != "categorical" or not entry.complete:
            continue
        values = frame[entry.name]
        known = set(entry.categories)
        present = values.notna().to_numpy()
        seen = np.array([digest(v) in known for v in values.astype(str)])
        unseen = present & ~seen
        if present.any() and unseen.sum() / present.sum() >= UNSEEN_RATE:
            rates[entry.name] = (int(unseen.sum()), float(unseen.sum() / present.sum()))
            rows |= unseen
    if not rates:
        return None
    listed = ", ".join(f"'{name}' ({n}, {rate:.0%})" for name, (n, rate) in rates.items())
    return PredictionWarning(
        kind="unseen_categories",
        count=int(rows.sum()),
        rows=_examples(rows),
        columns=list(rates),
        message=f"Categories never seen in training: {listed} of the values. The model treats "
        "them as unknown (like a missing value).",
    )


def forecast_in_history(
    frame: pd.DataFrame, time_column: str, last_dates: dict[str, pd.Timestamp], series: str | None
) -> PredictionWarning | None:
    """Forecast rows dated inside their series' history: their lags are the model's own fitted
    values, not a forecast from the end of the data."""
    import pandas as pd

    if time_column not in frame.columns:
        return None
    wanted = pd.to_datetime(frame[time_column], errors="coerce", format="mixed")
    keys = frame[series].astype(str) if series and series in frame.columns else None
    if keys is not None:
        last = keys.map(last_dates)
    else:
        last = pd.Series(max(last_dates.values()), index=frame.index)
    inside = (wanted.notna() & last.notna() & (wanted <= last)).to_numpy()
    if not inside.any():
        return None
    return PredictionWarning(
        kind="forecast_in_history",
        count=int(inside.sum()),
        rows=_examples(inside),
        columns=[time_column],
        message=f"{int(inside.sum())} row(s) ask for dates inside the training history: they "
        "get one-step fitted values from lags the model saw (in-sample), not forecasts; only "
        "dates after the last training date are forecasts.",
    )

"""The rows an analysis reads: labelled rows with the model's predictions beside them.

They come from the job's held-out rows (``holdout.py``) or from a labelled dataset the caller
gives, predicted here with the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.analysis.facts import ModelFacts
from mltrainer.tools.analysis.models import Source

if TYPE_CHECKING:
    import pandas as pd

MIN_ROWS = 10
MAX_ROWS = 200_000  # beyond this a seeded sample is analysed: the statistics do not need more
PROBA_PREFIX = "proba_"
MAX_SHOWN_COLUMNS = 20
MAX_SHOWN_CHARS = 60


class Predictor(Protocol):
    """A loaded model: ``tools.training.model.LoadedModel`` is one."""

    @property
    def estimator(self) -> Any: ...

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame: ...


@dataclass
class EvaluatedRows:
    """Row i of each field belongs together; ``frame`` holds the columns to slice on."""

    frame: pd.DataFrame
    actual: pd.Series
    predicted: pd.Series
    proba: pd.DataFrame | None  # one column per class label
    row: np.ndarray  # position in the source file, -1 when unknown
    source: Source
    horizon: np.ndarray | None = None
    series: pd.Series | None = None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.actual)

    def values_of(self, i: int, hidden: set[str]) -> dict[str, str]:
        """Row ``i``'s values to show beside an error: shortened, sensitive columns left out."""
        shown = [c for c in self.frame.columns if str(c) not in hidden][:MAX_SHOWN_COLUMNS]
        record = self.frame.iloc[i]
        return {str(c): _short(record[c]) for c in shown}


def check_analysable(facts: ModelFacts, target: str | None = None) -> None:
    """Refuse models the analysis cannot read, before any data is loaded."""
    if facts.task == "clustering":
        given = f" (target={target!r} was given)" if target else ""
        raise InvalidInput(
            f"Model {facts.model_id} is a clustering model: it has no target to compare its "
            f"output with{given}, so there are no errors to analyse.",
            next_step="Analyse a classification, regression or forecast model, or train one with "
            "a target.",
        )
    if facts.target is None:
        raise InvalidInput(
            f"Model {facts.model_id} has no target column recorded.",
            next_step="Train it again with train_model(target=...).",
        )


def dataset_rows(
    model: Predictor, frame: pd.DataFrame, facts: ModelFacts, target: str | None = None
) -> EvaluatedRows:
    """Predict ``frame``'s labelled rows with ``model`` and pair them with their labels."""
    import pandas as pd

    check_analysable(facts, target)
    column = target or facts.target
    assert column is not None
    if column not in frame.columns:
        shown = ", ".join(repr(str(c)) for c in list(frame.columns)[:30])
        raise InvalidInput(
            f"The dataset has no column '{column}' holding the true values.",
            next_step=f"Pass target= the column with the labels (columns: {shown}), or a dataset "
            f"that has '{facts.target}'.",
        )
    labelled = np.flatnonzero(frame[column].notna().to_numpy())
    if len(labelled) < MIN_ROWS:
        raise InvalidInput(
            f"The dataset has {len(labelled)} row(s) with a value in '{column}'; at least "
            f"{MIN_ROWS} are needed for an analysis.",
            next_step="Pass a larger labelled dataset.",
        )
    notes = []
    if len(labelled) < len(frame):
        notes.append(f"{len(frame) - len(labelled)} row(s) without a value in '{column}' skipped.")
    if len(labelled) > MAX_ROWS:
        rng = np.random.default_rng(0)
        labelled = np.sort(rng.choice(labelled, size=MAX_ROWS, replace=False))
        notes.append(f"A seeded sample of {MAX_ROWS} labelled rows was analysed.")
    rows = frame.iloc[labelled].reset_index(drop=True)
    out = model.predict_frame(rows)
    classification = facts.classification
    actual = (
        labels(rows[column], facts.classes) if classification else numeric(rows[column], column)
    )
    predicted = out["prediction"].astype(str) if classification else out["prediction"].astype(float)
    proba_columns = [c for c in out.columns if str(c).startswith(PROBA_PREFIX)]
    proba = (
        pd.DataFrame({str(c)[len(PROBA_PREFIX) :]: out[c].to_numpy() for c in proba_columns})
        if classification and proba_columns
        else None
    )
    evaluated = EvaluatedRows(
        frame=rows.drop(columns=[column]),
        actual=actual,
        predicted=predicted.reset_index(drop=True),
        proba=proba,
        row=labelled.astype(np.int64),
        source="dataset",
        notes=notes,
    )
    if facts.task == "forecast":
        add_forecast_keys(evaluated, model.estimator)
    return evaluated


def labels(values: pd.Series, classes: list[str] | None) -> pd.Series:
    """Class labels as the strings the model knows (``1.0`` read back as ``1`` when it must)."""
    import pandas as pd

    text = values.astype(str).reset_index(drop=True)
    known = set(classes or [])
    if known and not set(text) <= known and pd.api.types.is_float_dtype(values):
        whole = values.dropna() % 1 == 0
        if bool(whole.all()):
            text = values.astype("Int64").astype(str).reset_index(drop=True)
    return text


def numeric(values: pd.Series, column: str) -> pd.Series:
    import pandas as pd

    converted = pd.to_numeric(values, errors="coerce").astype(float).reset_index(drop=True)
    if converted.isna().any():
        raise InvalidInput(
            f"The column '{column}' has values that are not numbers; a regression model's "
            "errors need numeric true values.",
            next_step="Clean the column, or pass target= the numeric column with the true values.",
        )
    return converted


def add_forecast_keys(rows: EvaluatedRows, estimator: Any) -> None:
    """Each row's series, and its horizon: steps after its series' last training date."""
    import pandas as pd

    time_column = getattr(estimator, "time_column", None)
    history = getattr(estimator, "history_times", None)
    if time_column is None or history is None or time_column not in rows.frame.columns:
        rows.notes.append("The model does not record its history: no error by horizon step.")
        return
    series_column = getattr(estimator, "series_column", None)
    keys = (
        rows.frame[series_column].astype(str)
        if series_column in rows.frame.columns
        else pd.Series([""] * len(rows), dtype=object)
    )
    if series_column in rows.frame.columns:
        rows.series = keys.reset_index(drop=True)
    times = pd.to_datetime(pd.Series(history), format="mixed")
    owners = getattr(estimator, "history_series", None) or [""] * len(times)
    last = times.groupby(pd.Series(owners, dtype=object).to_numpy()).max()
    wanted = pd.to_datetime(rows.frame[time_column], errors="coerce", format="mixed")
    steps = np.zeros(len(rows), dtype=np.int64)
    freq = getattr(estimator, "freq", None) or "D"
    for key, positions in keys.groupby(keys.to_numpy()).indices.items():
        if key not in last.index:
            continue
        when = wanted.iloc[positions]
        later = (when > last[key]).to_numpy()
        if later.any():
            grid = pd.date_range(last[key], when[later].max(), freq=freq)
            if grid[-1] < when[later].max():  # the last date falls between two steps
                grid = pd.date_range(last[key], periods=len(grid) + 1, freq=freq)
            steps[positions[later]] = np.searchsorted(grid.to_numpy(), when[later].to_numpy())
    rows.horizon = steps


def _short(value: Any) -> str:
    import pandas as pd

    text = "<missing>" if pd.api.types.is_scalar(value) and pd.isna(value) else str(value)
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 1] + "…"

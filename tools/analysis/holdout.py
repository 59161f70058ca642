"""The held-out rows a finished job keeps beside its model: ``holdout.parquet``.

One row per held-out row: the model's feature columns, the target (true value), the row's
position in the file the job trained on, the prediction, ``proba_<class>`` per class
(classification) and, for forecasts, the horizon step. The role of each column is recorded in
the file's schema metadata (``mltrainer.holdout``), so a feature that happens to be called
``prediction`` or ``row`` cannot be mistaken for one: the reserved names get a leading
underscore when taken. Text cells and column names pass the masker before they are written.

``write_holdout`` writes it from the engine's held-out frame; ``write_holdout_rows`` from a
model and labelled test rows; ``read_holdout`` reads it back for the analysis.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ValidationError

from mltrainer.state.errors import InvalidInput, NotFound
from mltrainer.state.files import write_bytes
from mltrainer.state.masking import Masker
from mltrainer.tools.analysis.facts import CLASSIFICATION, ModelFacts
from mltrainer.tools.analysis.rows import (
    PROBA_PREFIX,
    EvaluatedRows,
    Predictor,
    check_analysable,
    dataset_rows,
    labels,
)

if TYPE_CHECKING:
    import pandas as pd

HOLDOUT_FILE = "holdout.parquet"
SCHEMA_KEY = b"mltrainer.holdout"


class HoldoutSchema(BaseModel):
    """What each column of ``holdout.parquet`` is."""

    version: Literal[1] = 1
    task: str
    target: str
    features: list[str]
    row_column: str
    prediction_column: str
    proba_columns: dict[str, str]  # class label -> column
    horizon_column: str | None = None
    series_column: str | None = None
    rows_known: bool


class HeldOut(Protocol):
    """What ``write_holdout`` reads of the engine's held-out rows (``HoldoutFrame`` is one)."""

    @property
    def x_test(self) -> pd.DataFrame | None: ...

    @property
    def y_test(self) -> np.ndarray | None: ...

    @property
    def y_pred(self) -> np.ndarray | None: ...

    @property
    def proba(self) -> np.ndarray | None: ...

    @property
    def n_series(self) -> int: ...

    @property
    def series_column(self) -> str | None: ...


class HoldoutSource(Protocol):
    """What ``write_holdout`` reads of a training result (``AutoMLResult`` is one)."""

    @property
    def task(self) -> str: ...

    @property
    def target(self) -> str | None: ...

    @property
    def classes(self) -> list[str]: ...

    @property
    def holdout_frame(self) -> HeldOut | None: ...


def write_holdout(
    folder: Path, result: HoldoutSource, frame: pd.DataFrame, masker: Masker
) -> Path | None:
    """Persist the engine's held-out rows and predictions in ``folder`` (the model's).

    ``frame`` is the whole table the job trained on: row numbers refer to it. Returns None when
    the task has no held-out labels (clustering).
    """
    import pandas as pd

    held = result.holdout_frame
    if held is None or held.y_test is None or held.x_test is None or result.target is None:
        return None
    x_test = held.x_test
    actual, predicted = held.y_test, held.y_pred
    classification = result.task in CLASSIFICATION
    proba = held.proba
    rows = EvaluatedRows(
        frame=x_test.reset_index(drop=True),
        actual=pd.Series(actual).astype(str) if classification else pd.Series(actual, dtype=float),
        predicted=pd.Series(predicted).astype(str)
        if classification
        else pd.Series(predicted, dtype=float),
        proba=pd.DataFrame(np.asarray(proba), columns=[str(c) for c in result.classes])
        if classification and proba is not None
        else None,
        row=_source_rows(frame, result.target, x_test),
        source="holdout",
    )
    if result.task == "forecast":
        _forecast_keys(rows, held, frame, x_test)
    return save_rows(folder, rows, result.task, result.target, masker)


def write_holdout_rows(
    folder: Path,
    model: Predictor,
    test_rows: pd.DataFrame,
    facts: ModelFacts,
    masker: Masker,
    *,
    row_numbers: np.ndarray | None = None,
) -> Path:
    """Persist labelled test rows the model never saw, predicted by it, as its held-out rows.

    ``row_numbers`` maps each of ``test_rows`` to its position in the original file.
    """
    rows = dataset_rows(model, test_rows, facts)
    if row_numbers is not None:
        rows.row = np.asarray(row_numbers, dtype=np.int64)[rows.row]
    rows.frame = rows.frame[[c for c in facts.features if c in rows.frame.columns]]
    assert facts.target is not None
    return save_rows(folder, rows, facts.task, facts.target, masker)


def save_rows(folder: Path, rows: EvaluatedRows, task: str, target: str, masker: Masker) -> Path:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = rows.frame.copy()
    table.columns = [masker.mask(str(c)) for c in table.columns]
    target = masker.mask(target)
    taken = {*table.columns, target}
    names = {role: _unique(role, taken) for role in ("row", "prediction", "horizon_step")}
    table[target] = rows.actual.to_numpy()
    table[names["row"]] = rows.row
    table[names["prediction"]] = rows.predicted.to_numpy()
    proba_columns: dict[str, str] = {}
    proba = rows.proba if rows.proba is not None else pd.DataFrame()
    for label in proba.columns:
        name = _unique(PROBA_PREFIX + masker.mask(str(label)), taken)
        proba_columns[masker.mask(str(label))] = name
        table[name] = proba[label].to_numpy()
    if rows.horizon is not None:
        table[names["horizon_step"]] = rows.horizon
    for column in table.columns:
        if not (
            pd.api.types.is_numeric_dtype(table[column])
            or pd.api.types.is_datetime64_any_dtype(table[column])
        ):
            table[column] = _masked_text(table[column], masker)
    schema = HoldoutSchema(
        task=task,
        target=target,
        features=[str(c) for c in table.columns[: rows.frame.shape[1]]],
        row_column=names["row"],
        prediction_column=names["prediction"],
        proba_columns=proba_columns,
        horizon_column=names["horizon_step"] if rows.horizon is not None else None,
        series_column=masker.mask(str(rows.series.name))
        if rows.series is not None and rows.series.name is not None
        else None,
        rows_known=bool((rows.row >= 0).all()),
    )
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata(
        {**(arrow.schema.metadata or {}), SCHEMA_KEY: schema.model_dump_json().encode()}
    )
    buffer = io.BytesIO()
    pq.write_table(arrow, buffer)
    return write_bytes(folder / HOLDOUT_FILE, buffer.getvalue())


def read_holdout(folder: Path, facts: ModelFacts) -> EvaluatedRows:
    """The model's held-out rows, as the analysis reads them."""
    import pandas as pd
    import pyarrow.parquet as pq

    check_analysable(facts)
    path = folder / HOLDOUT_FILE
    if not path.is_file():
        raise NotFound(
            f"Model {facts.model_id} has no stored held-out rows ({HOLDOUT_FILE}): it was "
            "trained before jobs kept them.",
            next_step="Pass dataset= a labelled dataset the model was not trained on (with the "
            "target column) to analyse it on those rows.",
        )
    try:
        arrow = pq.read_table(path)
        schema = HoldoutSchema.model_validate_json((arrow.schema.metadata or {})[SCHEMA_KEY])
    except (OSError, KeyError, ValueError, ValidationError) as error:
        raise InvalidInput(
            f"{path} is not a held-out rows file this server wrote ({error}).",
            next_step="Pass dataset= a labelled dataset instead.",
        ) from error
    table = arrow.to_pandas()
    classification = schema.task in CLASSIFICATION
    proba = (
        pd.DataFrame({label: table[c].to_numpy() for label, c in schema.proba_columns.items()})
        if schema.proba_columns
        else None
    )
    actual = table[schema.target]
    return EvaluatedRows(
        frame=table[schema.features],
        actual=labels(actual, facts.classes) if classification else actual.astype(float),
        predicted=table[schema.prediction_column].astype(str)
        if classification
        else table[schema.prediction_column].astype(float),
        proba=proba,
        row=table[schema.row_column].to_numpy(dtype=np.int64),
        source="holdout",
        horizon=table[schema.horizon_column].to_numpy(dtype=np.int64)
        if schema.horizon_column
        else None,
        series=table[schema.series_column].astype(str) if schema.series_column else None,
    )


def _unique(name: str, taken: set[str]) -> str:
    while name in taken:
        name = "_" + name
    taken.add(name)
    return name


def _masked_text(column: pd.Series, masker: Masker) -> pd.Series:
    import pandas as pd

    values = column.astype(object)
    missing = values.isna().to_numpy()
    text = pd.Series([None] * len(values), dtype=object, index=values.index)
    text[~missing] = [masker.mask(str(v)) for v in values[~missing]]
    return text


def _source_rows(frame: pd.DataFrame, target: str, x_test: pd.DataFrame) -> np.ndarray:
    """Row numbers in ``frame`` of the held-out rows, or -1 when they cannot be proven.

    The engine numbers the held-out rows by their position among the rows with a target; the
    mapping is checked against the values, so a change in that numbering gives -1, not wrong rows.
    """
    unknown = np.full(len(x_test), -1, dtype=np.int64)
    if target not in frame.columns:
        return unknown
    labelled = np.flatnonzero(frame[target].notna().to_numpy())
    index = x_test.index.to_numpy()
    if not len(index) or index.dtype.kind not in "iu" or index.min() < 0:
        return unknown
    if index.max() >= len(labelled):
        return unknown
    rows = labelled[index]
    columns = [c for c in x_test.columns if c in frame.columns]
    if len(columns) != x_test.shape[1]:
        return unknown
    source = frame.iloc[rows][columns].reset_index(drop=True)
    return rows.astype(np.int64) if source.equals(x_test.reset_index(drop=True)) else unknown


def _forecast_keys(
    rows: EvaluatedRows, held: HeldOut, frame: pd.DataFrame, x_test: pd.DataFrame
) -> None:
    """Series, horizon step (the engine holds out the last n points of every series, series
    after series) and row numbers, matched on (time, series) in the training table."""
    import pandas as pd

    series_column = held.series_column
    time_column = next(c for c in x_test.columns if c != series_column)
    n_series = held.n_series or 1
    if len(x_test) % n_series == 0:
        rows.horizon = np.tile(np.arange(1, len(x_test) // n_series + 1), n_series)
    if series_column:
        rows.series = x_test[series_column].astype(str).reset_index(drop=True)

    def keys(table: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "t": pd.to_datetime(table[time_column], errors="coerce", format="mixed").to_numpy(),
                "s": table[series_column].astype(str).to_numpy() if series_column else "",
            }
        )

    if time_column not in frame.columns or (series_column and series_column not in frame.columns):
        return
    source = keys(frame).assign(row=np.arange(len(frame))).drop_duplicates(["t", "s"])
    matched = keys(x_test).merge(source, on=["t", "s"], how="left")["row"]
    rows.row = matched.fillna(-1).to_numpy(dtype=np.int64)

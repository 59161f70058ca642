"""`peek_table`: a table's columns and first values without pandas, for checks made in the
server before a job starts (the argument check, the deep-layout sniff).

The server answers a ``train_model`` call at once and leaves the reading to the job's worker;
importing pandas there to look at 200 rows cost the server ~80 MB for as long as it runs. CSV/TSV
is read with the stdlib ``csv`` module on the dialect and encoding `sniff` found; Parquet with
pyarrow's metadata and one bounded batch of the asked columns. Anything else (JSON, Excel), and
any CSV head that the full reader would reject (rows of the wrong width, no data rows, text that
is not in the sniffed encoding), goes through `read_table`, so its errors stay the reader's own.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mltrainer.tools.profiling.formats import TableFormat
from mltrainer.tools.profiling.reader import (
    NULL_VALUES,
    open_parquet,
    pandas_metadata,
    read_table,
)
from mltrainer.tools.profiling.sniff import open_text_stream, sniff

if TYPE_CHECKING:
    import pyarrow as pa

Cell = str | int | float | bool | bytes | None
_NULLS = frozenset(NULL_VALUES)
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?inf(inity)?$", re.IGNORECASE)
# pyarrow's CSV reader types a column of these as boolean (pandas counts bool as numeric).
_TRUE, _FALSE = (
    frozenset({"1", "True", "TRUE", "true"}),
    frozenset({"0", "False", "FALSE", "false"}),
)


@dataclass
class TablePeek:
    """The first rows of a table: every column's name, and the values of the asked columns as
    the full reader would type them (numbers as int/float/bool, text as str, missing as None)."""

    columns: list[str]
    rows: int  # rows read: fewer than asked means the whole table was read
    values: dict[str, list[Cell]] = field(default_factory=dict)
    numeric: dict[str, bool] = field(default_factory=dict)  # as pandas' is_numeric_dtype says


def peek_table(
    path: Path, nrows: int, columns: Sequence[str] | None = None, *, text_only: bool = False
) -> TablePeek:
    """The columns of ``path`` and the first ``nrows`` values of ``columns`` (all when None;
    names the table does not have are left out: the caller says which are unknown).
    ``text_only``: a Parquet file's numeric columns are not read (a CSV is parsed whole)."""
    path = Path(path)
    fmt = sniff(path)
    if fmt.kind == "csv":
        peeked = _peek_csv(path, fmt, nrows, columns)
        if peeked is not None:
            return peeked
    elif fmt.kind == "parquet":
        peeked = _peek_parquet(path, nrows, columns, text_only)
        if peeked is not None:
            return peeked
    return _peek_frame(path, nrows, columns)


def _peek_csv(
    path: Path, fmt: TableFormat, nrows: int, columns: Sequence[str] | None
) -> TablePeek | None:
    """None when the head needs the full reader's verdict (its error message, or its retry)."""
    names = fmt.column_names
    rows: list[list[str]] = []
    encoding = "utf-8-sig" if fmt.encoding in (None, "utf-8") else fmt.encoding
    try:
        with open_text_stream(path, fmt.compression, fmt.member) as raw:
            text = io.TextIOWrapper(raw, encoding=encoding, newline="")
            quoting = {"quotechar": fmt.quotechar} if fmt.quotechar else {"quoting": csv.QUOTE_NONE}
            reader = csv.reader(text, delimiter=fmt.delimiter or ",", **quoting)  # type: ignore[arg-type]
            if fmt.header:
                next(reader, None)
            for row in reader:
                if not row:
                    continue  # blank lines: pyarrow skips them too
                if len(row) != len(names):
                    return None
                rows.append(row)
                if len(rows) >= nrows:
                    break
    except (UnicodeDecodeError, csv.Error):
        return None
    if not rows:
        return None
    wanted = [c for c in columns if c in names] if columns is not None else names
    peek = TablePeek(columns=list(names), rows=len(rows))
    for name in wanted:
        index = names.index(name)
        raw_values = [None if row[index] in _NULLS else row[index] for row in rows]
        peek.values[name], peek.numeric[name] = _typed(raw_values, fmt)
    return peek


def _typed(values: list[str | None], fmt: TableFormat) -> tuple[list[Cell], bool]:
    """The column as the reader types it: numbers when every present value is one."""
    present = [v for v in values if v is not None]
    if not present:
        return list(values), False  # an all-missing column is pyarrow's null type: objects
    numbers = [_number(v, fmt) for v in present]
    if all(n is not None for n in numbers):
        return [None if v is None else _number(v, fmt) for v in values], True
    if all(v in _TRUE or v in _FALSE for v in present):
        as_bool: list[Cell] = [None if v is None else v in _TRUE for v in values]
        return as_bool, len(present) == len(values)  # with gaps pandas holds them as objects
    return list(values), False


def _number(value: str, fmt: TableFormat) -> int | float | None:
    text = value.strip()
    if fmt.thousands:
        text = text.replace(fmt.thousands, "")
    if fmt.decimal == ",":
        text = text.replace(",", ".")
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return None


def _peek_parquet(
    path: Path, nrows: int, columns: Sequence[str] | None, text_only: bool = False
) -> TablePeek | None:
    import pyarrow as pa

    try:
        parquet = open_parquet(path, stream=True)
        schema = parquet.schema_arrow
        index = _stored_index(schema)  # a stored pandas index is no column
        names = [n for n in schema.names if n not in index]
        wanted = [c for c in columns if c in names] if columns is not None else names
        if text_only:  # a dictionary page of every numeric column is memory the server keeps
            wanted = [c for c in wanted if _is_text(schema.field(c).type)]
        batch = next(parquet.iter_batches(batch_size=nrows, columns=wanted), None)
    except (pa.ArrowInvalid, OSError):
        return None  # the full reader says what is wrong with the file
    rows = min(parquet.metadata.num_rows, nrows)
    if batch is None or rows == 0:
        return None
    peek = TablePeek(columns=names, rows=rows)
    for name in wanted:
        column = batch.column(name)
        kind = column.type
        peek.values[name] = column.to_pylist()[:nrows]
        plain = pa.types.is_integer(kind) or pa.types.is_floating(kind)
        peek.numeric[name] = plain or (pa.types.is_boolean(kind) and column.null_count == 0)
    return peek


def _stored_index(schema: pa.Schema) -> set[str]:
    """The columns that hold a pandas index pandas stored with the table (no data columns).
    A RangeIndex is stored as a description (a dict), not a column."""
    found = pandas_metadata(schema).get("index_columns")
    return {name for name in found if isinstance(name, str)} if isinstance(found, list) else set()


def _is_text(kind: pa.DataType) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_struct(kind)  # {"bytes": ...} image cells
    )


def _peek_frame(path: Path, nrows: int, columns: Sequence[str] | None) -> TablePeek:
    import pandas as pd

    frame = read_table(path, nrows=nrows)
    names = [str(c) for c in frame.columns]
    peek = TablePeek(columns=names, rows=len(frame))
    for name in [c for c in columns if c in names] if columns is not None else names:
        series = frame[name]
        peek.values[name] = [None if _missing(v) else v for v in series.tolist()]
        peek.numeric[name] = bool(pd.api.types.is_numeric_dtype(series))
    return peek


def _missing(value: object) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or dict cell: present
        return False

"""Rows streamed from a database cursor into one Parquet file, a chunk at a time.

Each chunk is written as a part file as it arrives, so memory holds one chunk however many rows
come; the parts are then joined into ``data.parquet`` under one schema. Values are typed by
pyarrow from what the driver returns, with a few made plain first (decimals to floats, UUIDs to
text, JSON documents and arrays to JSON text). A column whose values change type from one chunk
to the next (SQLite allows it) is widened: integers and floats to floats, anything else to text;
a column whose values cannot share one type even within a chunk becomes text.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel


class ColumnType(BaseModel):
    name: str
    type: str  # the Arrow type of the snapshot's column, e.g. int64, double, string


class SnapshotWriter:
    def __init__(self, folder: Path, columns: Sequence[str]) -> None:
        self.columns = unique_names([str(c) for c in columns])
        self.rows = 0
        self._scratch = folder / ".parts"
        self._scratch.mkdir()
        self._parts: list[Path] = []
        self._schemas: list[pa.Schema] = []

    def add(self, rows: Sequence[Sequence[object]]) -> None:
        if not rows:
            return
        arrays = [_array(values) for values in zip(*rows, strict=True)]
        table = pa.Table.from_arrays(arrays, names=self.columns)
        part = self._scratch / f"part-{len(self._parts):06d}.parquet"
        pq.write_table(table, part)
        self._parts.append(part)
        self._schemas.append(table.schema)
        self.rows += len(rows)

    def finish(self, target: Path) -> list[ColumnType]:
        """Join the parts into ``target``; returns each column's type."""
        schema = pa.schema(
            [
                pa.field(name, _widest([s.field(i).type for s in self._schemas]))
                for i, name in enumerate(self.columns)
            ]
        )
        with pq.ParquetWriter(target, schema) as writer:
            for part in self._parts:
                writer.write_table(pq.read_table(part).cast(schema))
        shutil.rmtree(self._scratch)
        return [ColumnType(name=f.name, type=str(f.type)) for f in schema]


def unique_names(names: list[str]) -> list[str]:
    """Column names made unique (a join's two ``id`` columns become ``id`` and ``id_2``)."""
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 2
        while candidate in seen:
            candidate, n = f"{name}_{n}", n + 1
        seen.add(candidate)
        out.append(candidate)
    return out


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str)
    if isinstance(value, memoryview):
        return value.tobytes()
    return value


def _array(values: Sequence[object]) -> pa.Array:
    plain = [_plain(value) for value in values]
    try:
        return pa.array(plain)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([None if v is None else str(v) for v in plain], pa.string())


def _widest(types: list[pa.DataType]) -> pa.DataType:
    known = {t for t in types if not pa.types.is_null(t)}
    if not known:
        return pa.string()  # only NULLs: text is what a later reader assumes anyway
    if len(known) == 1:
        return known.pop()
    if all(pa.types.is_integer(t) for t in known):
        return pa.int64()
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in known):
        return pa.float64()
    return pa.string()

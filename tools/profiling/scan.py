"""Loading a dataset for profiling: the whole file when small, else one streaming pass.

The streaming pass reads the file in record batches (never all of it at once) and yields exact
row and missing-value counts plus a uniform random sample for everything else.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mltrainer.state.masking import Masker
from mltrainer.tools.profiling.formats import TableFormat
from mltrainer.tools.profiling.pieces import iter_csv_batches, split_ranges
from mltrainer.tools.profiling.reader import (
    STREAM_BLOCK_BYTES,
    BadRows,
    arrow_to_frame,
    locate_bad_rows,
    open_parquet,
    read_frame,
    with_csv_retries,
)
from mltrainer.tools.profiling.sniff import read_head

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

FULL_READ_BYTES = 64 << 20
MAX_PARALLEL = 4
COMPRESSION_RATIO = 5


@dataclass
class Loaded:
    frame: pd.DataFrame = field(repr=False)
    n_rows: int
    missing: dict[str, int]
    bad: BadRows
    sampled: bool


@dataclass
class _Scan:
    """What one streaming pass accumulates; ``schema`` lets the retry logic inspect it."""

    sample: pa.Table
    n_rows: int
    nulls: dict[str, int]

    @property
    def schema(self) -> pa.Schema:
        return self.sample.schema


def load(
    path: Path,
    fmt: TableFormat,
    size: int,
    sample_rows: int,
    seed: int = 0,
    masker: Masker | None = None,
) -> Loaded:
    """The file whole when small, else one streaming pass; data quoted in bad-row reports and
    errors is masked with ``masker`` before it is shortened."""
    big = size * (COMPRESSION_RATIO if fmt.compression else 1) > FULL_READ_BYTES
    if big and can_stream(fmt):
        return stream(path, fmt, sample_rows, seed, masker)
    frame, bad = read_frame(path, fmt, masker=masker)
    return whole(frame, bad, sample_rows, seed)


def whole(frame: pd.DataFrame, bad: BadRows, sample_rows: int, seed: int = 0) -> Loaded:
    """A table read whole: exact counts, and a uniform sample of ``sample_rows`` rows (or all)."""
    n_rows = len(frame)
    missing = {str(c): int(v) for c, v in frame.isna().sum().items()}
    if n_rows > sample_rows:
        frame = frame.sample(sample_rows, random_state=seed).sort_index()
    return Loaded(frame, n_rows, missing, bad, sampled=n_rows > sample_rows)


def can_stream(fmt: TableFormat) -> bool:
    """Whether the file can be read in one streaming pass (a sample without the whole)."""
    return fmt.kind == "parquet" or (fmt.kind == "csv" and not fmt.thousands)


def stream(
    path: Path, fmt: TableFormat, sample_rows: int, seed: int = 0, masker: Masker | None = None
) -> Loaded:
    """One streaming pass: exact counts, and a uniform sample of ``sample_rows`` rows; the
    whole table is never held (training samples a table too large for memory this way)."""
    if fmt.kind == "parquet":
        return _stream_parquet(path, sample_rows, seed)
    return _stream_csv(path, fmt, path.stat().st_size, sample_rows, seed, masker)


def estimate_rows(path: Path, fmt: TableFormat, size: int) -> int:
    head = read_head(path, fmt.compression, fmt.member)
    lines = max(head.count(b"\n"), 1)
    total = size * (COMPRESSION_RATIO if fmt.compression else 1)
    return max(int(total / (len(head) / lines)), 1)


def sample_batches(
    batches: Iterable[pa.RecordBatch], estimated_rows: int, sample_rows: int, seed: int
) -> _Scan:
    """Exact counts over every batch, and a Bernoulli sample sized to about ``sample_rows``."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    keep = min(1.0, 1.2 * sample_rows / estimated_rows)
    parts: list[pa.RecordBatch] = []
    nulls: dict[str, int] = {}
    n_rows = 0
    schema = None
    for batch in batches:
        schema = batch.schema
        n_rows += batch.num_rows
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            nulls[name] = nulls.get(name, 0) + column.null_count
        chosen = np.flatnonzero(rng.random(batch.num_rows) < keep)
        if len(chosen):
            parts.append(batch.take(pa.array(chosen)))
    if schema is None:
        return _Scan(pa.table({}), 0, {})
    return _Scan(pa.Table.from_batches(parts, schema=schema), n_rows, nulls)


def _finish(scan: _Scan, bad: BadRows, sample_rows: int, seed: int) -> Loaded:
    frame = arrow_to_frame(scan.sample)
    if len(frame) > sample_rows:
        frame = frame.sample(sample_rows, random_state=seed).sort_index()
    sampled = len(frame) < scan.n_rows
    return Loaded(frame.reset_index(drop=True), scan.n_rows, scan.nulls, bad, sampled)


def _stream_csv(
    path: Path, fmt: TableFormat, size: int, sample_rows: int, seed: int, masker: Masker | None
) -> Loaded:
    """One pass over the file, split into byte ranges parsed in parallel when rows allow it."""
    from concurrent.futures import ThreadPoolExecutor

    estimated = estimate_rows(path, fmt, size)
    parts = max(1, min(os.cpu_count() or 1, MAX_PARALLEL))
    split = split_ranges(path, fmt, parts)
    ranges: list[tuple[int, int] | None] = list(split) if split else [None]

    def scan_range(index: int) -> tuple[_Scan, BadRows]:
        bad = BadRows(masker=masker)
        scan = with_csv_retries(
            path,
            fmt,
            lambda fmt, types, block: sample_batches(
                iter_csv_batches(path, fmt, bad, types, block, ranges[index]),
                estimated,
                sample_rows,
                seed + index,
            ),
            reset=bad.reset,
            block_size=STREAM_BLOCK_BYTES,
            masker=masker,
        )
        return scan, bad

    with ThreadPoolExecutor(max_workers=len(ranges)) as pool:
        results = list(pool.map(scan_range, range(len(ranges))))
    scan = _merge([r[0] for r in results])
    bad = BadRows(expected=max(r[1].expected for r in results), masker=masker)
    bad.count = sum(r[1].count for r in results)
    if bad.count:
        bad = locate_bad_rows(path, fmt, masker)  # numbers the lines (the parallel pass cannot)
    return _finish(scan, bad, sample_rows, seed)


def _merge(scans: list[_Scan]) -> _Scan:
    """One scan from several ranges' scans, unifying the types each range inferred."""
    import pyarrow as pa

    if len(scans) == 1:
        return scans[0]
    nulls: dict[str, int] = {}
    for scan in scans:
        for name, count in scan.nulls.items():
            nulls[name] = nulls.get(name, 0) + count
    tables = [s.sample for s in scans if s.sample.num_columns]
    names = tables[0].column_names if tables else []
    for name in names:
        types = {t.schema.field(name).type for t in tables} - {pa.null()}
        if len(types) <= 1:
            target = types.pop() if types else pa.null()
        elif all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in types):
            target = pa.float64()
        else:
            target = pa.string()
        tables = [_cast_column(t, name, target) for t in tables]
    sample = pa.concat_tables(tables) if tables else pa.table({})
    return _Scan(sample, sum(s.n_rows for s in scans), nulls)


def _cast_column(table: pa.Table, name: str, target: pa.DataType) -> pa.Table:
    index = table.schema.get_field_index(name)
    if table.schema.field(name).type == target:
        return table
    return table.set_column(index, name, table.column(name).cast(target))


def _stream_parquet(path: Path, sample_rows: int, seed: int) -> Loaded:
    parquet = open_parquet(path, stream=True)  # pages stream: no row group is held whole
    estimated = parquet.metadata.num_rows
    batches = parquet.iter_batches(batch_size=1 << 16)
    scan = sample_batches(batches, estimated, sample_rows, seed)
    return _finish(scan, BadRows(), sample_rows, seed)

"""Reading a CSV in pieces, for profiling's one streaming pass (scan.py): byte ranges of whole
rows that several pyarrow readers parse side by side, record-batch streams of a file or of one
range. The dialect, the options and the bad-row policy are read_table's (reader.py)."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrainer.tools.profiling.bad_rows import BadRows
from mltrainer.tools.profiling.formats import TableFormat
from mltrainer.tools.profiling.reader import BLOCK_BYTES, arrow_source, csv_options

if TYPE_CHECKING:
    import pyarrow as pa


class RangeFile(io.RawIOBase):
    """Bytes ``start`` to ``end`` of a file, so several readers can parse one file in parallel."""

    def __init__(self, path: Path, start: int, end: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._file.seek(start)
        self._left = end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)[: self._left]
        count = self._file.readinto(view)
        self._left -= count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


def split_ranges(path: Path, fmt: TableFormat, parts: int) -> list[tuple[int, int]] | None:
    """Byte ranges of whole data rows, or None when rows cannot be split by byte offsets."""
    ascii_compatible = fmt.encoding in ("utf-8", "utf-8-sig", "cp1252", "latin-1")
    if fmt.kind != "csv" or fmt.compression or fmt.multiline_values or not ascii_compatible:
        return None
    size = path.stat().st_size
    with open(path, "rb") as stream:
        start = len(stream.readline()) if fmt.header else 0
        cuts = [start]
        for i in range(1, parts):
            stream.seek(max(start + (size - start) * i // parts, cuts[-1]))
            stream.readline()
            cuts.append(stream.tell())
    cuts.append(size)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def iter_csv_batches(
    path: Path,
    fmt: TableFormat,
    bad: BadRows,
    column_types: dict[str, pa.DataType],
    block_size: int = BLOCK_BYTES,
    byte_range: tuple[int, int] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream a CSV (or one byte range of its rows) in record batches."""
    import pyarrow as pa
    from pyarrow import csv

    options = csv_options(fmt, bad=bad, column_types=column_types, block_size=block_size)
    source = arrow_source(path, fmt)
    if byte_range is not None:
        source = pa.PythonFile(RangeFile(path, *byte_range), mode="r")
        read = options["read_options"]
        read.skip_rows = 0
        if fmt.encoding == "utf-8-sig":
            read.encoding = "utf8"
    with csv.open_csv(source, **options) as reader:
        yield from reader

"""A head read of a Parquet file decodes only the pages its rows are in (issue #17): a file
written as one big row group is not read whole to show its first 200 rows."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROWS = 2_000_000


def _one_row_group(path: Path) -> int:
    """A ~64 MB table in one row group; its uncompressed size."""
    rng = np.random.default_rng(0)
    table = pa.table({f"x{i}": rng.normal(size=ROWS) for i in range(4)})
    pq.write_table(table, path, row_group_size=ROWS)
    return int(pq.ParquetFile(path).metadata.row_group(0).total_byte_size)


def test_a_parquet_head_read_allocates_a_fraction_of_its_row_group(tmp_path: Path) -> None:
    path = tmp_path / "one_group.parquet"
    group_bytes = _one_row_group(path)
    # A fresh interpreter, so that the pool's high-water mark is this read's alone.
    script = textwrap.dedent(
        f"""
        import pyarrow as pa
        import pyarrow.parquet as pq
        from mltrainer.tools.profiling import read_table
        from mltrainer.tools.profiling.peek import peek_table

        head = read_table({str(path)!r}, nrows=200)
        peek = peek_table({str(path)!r}, 200, columns=["x1"])
        print(pa.default_memory_pool().max_memory())
        first = pq.ParquetFile({str(path)!r}).read_row_group(0, columns=["x1"])["x1"][:200]
        assert len(head) == 200 and head["x1"].tolist() == first.to_pylist()
        assert peek.values["x1"] == first.to_pylist()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    peak = int(done.stdout.strip())
    assert peak < group_bytes / 4, (peak, group_bytes)

"""How much memory training on a table will take, told before the table is loaded (issue #17).

The estimate: the frame's size in memory (bytes per row measured on the first rows as pandas
holds them, times the rows: exact for Parquet from its metadata, for CSV the file's size over
the bytes per line of its head), and the training peak from it. The peak model was fitted on
the worker's measured peak RSS in bench/automl (60 s budget, `served`): a floor of ~310 MB for
the libraries (a 258-row table: 313 MB), then 12–14 × the frame while the engine searches on
all rows (glyphs26 4.5 MB → 371 MB, flights_delay 5.3 MB → 375 MB, mixed_100k 30 MB → 659–681
MB), and far less per byte once the planner caps the search rows (mixed_1m 302 MB → 801 MB):
12 × the first 40 MB, 2 × the rest (the read's Arrow copy and the refit), which over-estimates
that last run by about 1.6 × — an estimate that errs on the side of not running out.

`plan_load` compares it with what the job may use (the memory free now, or
``MLTRAINER_MAX_MEMORY_GB``): all rows when they fit; a uniform sample drawn while reading when
they do not; a refusal naming a remote runtime when not even a useful sample fits.
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import BaseModel, Field

from mltrainer.state.errors import DatasetError
from mltrainer.state.settings import Settings
from mltrainer.tools.profiling.formats import TableFormat
from mltrainer.tools.profiling.sniff import sniff

MB = 1 << 20
FLOOR_BYTES = 320 * MB  # the worker with numpy, pandas, scikit-learn, SciPy, XGBoost, Optuna
SMALL_FRAME_BYTES = 40 * MB
SMALL_FACTOR = 12.0  # search on all rows: folds, encoded copies, boosters side by side
LARGE_FACTOR = 2.0  # beyond it the planner caps the search rows
PROBE_ROWS = 2000
MIN_SAMPLE_ROWS = 1000  # fewer rows than this make no model worth the name


class Footprint(BaseModel):
    """The memory estimate of training on one table, and what the job may use."""

    rows: int = Field(description="Rows in the table: exact for Parquet, estimated for CSV.")
    rows_exact: bool
    bytes_per_row: float = Field(description="As pandas holds them, measured on the head.")
    frame_bytes: int
    peak_bytes: int = Field(description="Estimated peak of the training worker on all rows.")
    limit_bytes: int = Field(description="The memory the job may use.")
    limit_source: str = Field(description="Where the limit comes from, for the messages.")

    @property
    def fits(self) -> bool:
        return self.peak_bytes <= self.limit_bytes


class LoadPlan(BaseModel):
    """How the load stage reads the table: all of it, or a sample of ``sample_rows``."""

    format: TableFormat
    footprint: Footprint | None = Field(description="None: a format that is not estimated.")
    sample_rows: int | None = None

    @property
    def sampled_from(self) -> int | None:
        """The table's rows when only a sample of them is read."""
        return None if self.sample_rows is None or self.footprint is None else self.footprint.rows

    def decision(self) -> str:
        """The sentence the job records when it samples."""
        found = self.footprint
        if found is None or self.sample_rows is None:
            return "All rows are read."
        about = "" if found.rows_exact else "about "
        return (
            f"Sampled {self.sample_rows:,} of {about}{found.rows:,} rows while loading: training "
            f"on all of them would need about {_gb(found.peak_bytes)} "
            f"({_gb(found.frame_bytes)} of data), more than the {_gb(found.limit_bytes)} "
            f"{found.limit_source}. The model is trained on a uniform random sample."
        )


def peak_bytes(frame_bytes: float) -> int:
    """The training worker's estimated peak RSS for a frame of this size (see the docstring)."""
    small = min(frame_bytes, SMALL_FRAME_BYTES)
    return int(FLOOR_BYTES + SMALL_FACTOR * small + LARGE_FACTOR * (frame_bytes - small))


def frame_bytes_for(peak: float) -> float:
    """The largest frame whose estimated peak stays within ``peak`` (the inverse)."""
    room = peak - FLOOR_BYTES
    if room <= SMALL_FACTOR * SMALL_FRAME_BYTES:
        return max(room, 0) / SMALL_FACTOR
    return SMALL_FRAME_BYTES + (room - SMALL_FACTOR * SMALL_FRAME_BYTES) / LARGE_FACTOR


def memory_limit(settings: Settings) -> tuple[int, str]:
    """What the job may use: the memory free now (this process's own counted as usable), or
    the configured cap when it is lower."""
    import psutil

    free = psutil.virtual_memory().available + psutil.Process().memory_info().rss
    if settings.max_memory_gb is not None:
        cap = int(settings.max_memory_gb * 1024**3)
        if cap < free:
            return cap, f"MLTRAINER_MAX_MEMORY_GB={settings.max_memory_gb:g} allows"
    return free, "free on this machine"


def estimate(path: Path, fmt: TableFormat, settings: Settings) -> Footprint | None:
    """The footprint of ``path``; None for the formats not estimated (JSON, Excel)."""
    if fmt.kind not in ("csv", "parquet"):
        return None
    from mltrainer.tools.profiling import read_table

    head = read_table(path, nrows=PROBE_ROWS)
    per_row = float(head.memory_usage(deep=True, index=False).sum()) / len(head)
    rows, exact = _rows(path, fmt, len(head))
    frame = per_row * rows
    limit, source = memory_limit(settings)
    return Footprint(
        rows=rows,
        rows_exact=exact,
        bytes_per_row=per_row,
        frame_bytes=int(frame),
        peak_bytes=peak_bytes(frame),
        limit_bytes=limit,
        limit_source=source,
    )


def _rows(path: Path, fmt: TableFormat, head_rows: int) -> tuple[int, bool]:
    """The table's rows: Parquet's metadata, or a CSV's size over its head's bytes per line."""
    from mltrainer.tools.profiling.reader import open_parquet
    from mltrainer.tools.profiling.scan import estimate_rows

    if fmt.kind == "parquet":
        return int(open_parquet(path, stream=True).metadata.num_rows), True
    if head_rows < PROBE_ROWS:
        return head_rows, True  # the probe read the whole file
    return max(estimate_rows(path, fmt, path.stat().st_size), head_rows), False


def plan_load(path: Path, settings: Settings) -> LoadPlan:
    """All rows, a sample that fits, or a DatasetError that says what it would take."""
    from mltrainer.tools.profiling.scan import can_stream

    fmt = sniff(path)
    found = estimate(path, fmt, settings)
    if found is None or found.fits:
        return LoadPlan(format=fmt, footprint=found)
    rows = int(frame_bytes_for(found.limit_bytes) / max(found.bytes_per_row, 1.0))
    if rows >= MIN_SAMPLE_ROWS and can_stream(fmt):
        return LoadPlan(format=fmt, footprint=found, sample_rows=min(rows, found.rows))
    raise _too_big(path, found, fmt, rows)


def _too_big(path: Path, found: Footprint, fmt: TableFormat, rows: int) -> DatasetError:
    need_gb = max(2, math.ceil(found.peak_bytes * 1.25 / 1024**3))
    why = (
        f"even a sample of {MIN_SAMPLE_ROWS:,} rows would not fit"
        if rows < MIN_SAMPLE_ROWS
        else f"a {fmt.kind} file cannot be sampled while it is read"
    )
    return DatasetError(
        f"{path.name} is too large to train on here: about {found.rows:,} rows, "
        f"{_gb(found.frame_bytes)} in memory and about {_gb(found.peak_bytes)} to train, "
        f"against {_gb(found.limit_bytes)} {found.limit_source}; {why}. Nothing was loaded.",
        next_step=f"Run it on a remote runtime with the memory: train_model(..., "
        f'runtime="modal") or submit_training(runtime="modal", memory_gb={need_gb}); or free '
        "memory (or raise MLTRAINER_MAX_MEMORY_GB), or pass a smaller extract as Parquet.",
    )


def _gb(size: float) -> str:
    return f"{size / 1024**3:.2f} GB" if size >= 1024**3 else f"{size / MB:.0f} MB"

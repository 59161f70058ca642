"""`profile`: describe a tabular dataset for a person and for the training planner."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from mltrainer.state.errors import DatasetError
from mltrainer.state.masking import Masker
from mltrainer.tools.profiling.bad_rows import BadRows
from mltrainer.tools.profiling.checks import count_duplicates, table_warnings
from mltrainer.tools.profiling.judge import SEVERITY, judge
from mltrainer.tools.profiling.models import DatasetProfile
from mltrainer.tools.profiling.scan import load, whole
from mltrainer.tools.profiling.sniff import sniff
from mltrainer.tools.profiling.target import suggest_targets

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_SAMPLE_ROWS = 100_000


def _unknown_target(path: Path, target: str, names: list[str]) -> DatasetError:
    close = [n for n in names if n.lower() == target.lower()]
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return DatasetError(
        f"{path.name} has no column {target!r}.{hint}",
        next_step=f"Its columns are: {', '.join(names[:40])}.",
    )


def profile(
    path: Path,
    target: str | None = None,
    *,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    plots_dir: Path | None = None,
    seed: int = 0,
    masker: Masker | None = None,
    read: pd.DataFrame | None = None,
) -> DatasetProfile:
    """Profile a tabular file: format, columns, target and task, warnings, and (optionally) plots.

    Files too big to read at once are streamed: row and missing counts are exact, everything else
    comes from a uniform sample of ``sample_rows`` rows. Plots are written to ``plots_dir``.
    Values shown shortened (examples, top values, classes, plot labels, bad rows) are masked
    with ``masker`` before they are cut; the plots' texts are masked as they are drawn.
    ``read`` is the file as ``read_table`` already read it, whole (a training job's load
    stage): it is profiled as it is, not read again, and left unchanged. Beyond
    ``sample_rows`` rows its sample is drawn from the frame: for a file of 64 MB or less the
    very rows a read of the file samples; for a larger one, which is streamed instead, a
    uniform sample all the same, not the same rows.
    """
    started = time.perf_counter()
    path = Path(path)
    fmt = sniff(path)
    if target is not None and fmt.column_names and target not in fmt.column_names:
        raise _unknown_target(path, target, fmt.column_names)
    if read is not None:
        loaded = whole(read, BadRows(), sample_rows, seed)  # read_table raises on bad rows
    else:
        loaded = load(path, fmt, path.stat().st_size, sample_rows, seed, masker)
    frame = loaded.frame
    if loaded.n_rows == 0 and loaded.bad.count:
        raise loaded.bad.error(path.name)
    if loaded.n_rows == 0:
        raise DatasetError(
            f"{path.name} has column names but no data rows.", next_step="Pass a file with data."
        )
    names = [str(c) for c in frame.columns]
    if target is not None and target not in names:
        raise _unknown_target(path, target, names)

    verdict = judge(
        frame, target, n_rows=loaded.n_rows, missing=loaded.missing, masker=masker, seed=seed
    )
    columns = {c.name: c for c in verdict.columns}
    duplicates = count_duplicates(frame)
    warnings = verdict.warnings + table_warnings(
        loaded.n_rows, duplicates, loaded.sampled, len(frame), loaded.bad
    )
    suggestions = [] if target is not None else suggest_targets(frame, columns, verdict.time_axis)
    plots = []
    if plots_dir is not None:
        from mltrainer.tools.profiling.plots import make_plots

        plots = make_plots(frame, verdict.columns, verdict.target, plots_dir, masker or Masker())
    warnings.sort(key=lambda w: SEVERITY[w.severity])
    return DatasetProfile(
        path=str(path),
        format=fmt,
        file_bytes=path.stat().st_size,
        n_rows=loaded.n_rows,
        n_columns=len(names),
        sampled=loaded.sampled,
        sample_rows=len(frame),
        bad_rows=loaded.bad.count,
        duplicate_rows=duplicates,
        columns=verdict.columns,
        target=verdict.target,
        suggested_targets=suggestions,
        time_axis=verdict.time_axis,
        drift=verdict.drift,
        warnings=warnings,
        plots=plots,
        elapsed_s=round(time.perf_counter() - started, 3),
    )

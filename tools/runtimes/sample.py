"""The dry run's data: a small slice of what a remote run will read, in the same layout.

Tables keep their format, name and columns and lose all but their first rows; other files
are copied while they are small, up to a total, so that a script that opens them finds them.
What is left out is listed, so a dry run that fails on a missing file says why.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from pydantic import BaseModel, Field

from mltrainer.state.errors import DatasetError

CSV_LIKE = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".csv.bz2", ".csv.xz", ".csv.zip")
LINES = (".jsonl", ".ndjson")
PARQUET = (".parquet", ".pq")
SMALL_FILE_BYTES = 1024 * 1024
TOTAL_BYTES = 20 * 1024 * 1024
MAX_FILES = 500


class SampleReport(BaseModel):
    folder: str
    tables: list[str] = Field(default_factory=list, description="Cut to their first rows.")
    copied: list[str] = Field(default_factory=list, description="Small files, copied whole.")
    left_out: list[str] = Field(default_factory=list, description="Too large or too many.")
    rows: int = Field(description="Rows kept of each table.")


def make_sample(
    source: Path, dest: Path, rows: int, *, spread_column: str | None = None
) -> SampleReport:
    """Write into ``dest`` a slice of every file under ``source`` (a folder).

    ``spread_column``: a table whose first rows hold fewer than two values of this column (a
    file sorted by its target) is sampled across the whole file instead, so that the engine
    sees every class it will see remotely.
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    report = SampleReport(folder=str(dest), rows=rows)
    budget = TOTAL_BYTES
    files = sorted(p for p in source.rglob("*") if p.is_file() and not p.is_symlink())
    for index, path in enumerate(files):
        name = path.relative_to(source).as_posix()
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        lowered = name.lower()
        if lowered.endswith(CSV_LIKE + LINES + PARQUET):
            _cut_table(path, target, rows, spread_column)
            report.tables.append(name)
        elif index < MAX_FILES and path.stat().st_size <= min(SMALL_FILE_BYTES, budget):
            shutil.copyfile(path, target)
            budget -= path.stat().st_size
            report.copied.append(name)
        else:
            report.left_out.append(name)
    return report


def _cut_table(path: Path, target: Path, rows: int, spread_column: str | None) -> None:
    lowered = path.name.lower()
    if lowered.endswith(LINES):
        with path.open("rb") as src, target.open("wb") as out:
            for count, line in enumerate(src):
                if count >= rows:
                    break
                out.write(line)
        return
    if lowered.endswith(PARQUET):
        _cut_parquet(path, target, rows, spread_column)
        return
    _cut_csv(path, target, rows, spread_column)


def _cut_csv(path: Path, target: Path, rows: int, spread_column: str | None) -> None:
    import pandas as pd

    sep = "\t" if ".tsv" in path.name.lower() else _delimiter(path)
    options = {"sep": sep, "dtype": str, "keep_default_na": False}
    try:
        frame = pd.read_csv(path, nrows=rows, **options)  # type: ignore[call-overload]
        if _too_narrow(frame, spread_column):
            whole = pd.read_csv(path, **options)  # type: ignore[call-overload]
            frame = whole.sample(n=min(rows, len(whole)), random_state=0).sort_index()
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DatasetError(
            f"{path.name} could not be read to make the dry run's sample: {exc}",
            next_step="Check the file (profile_dataset shows what is wrong with it).",
        ) from exc
    frame.to_csv(target, sep=sep, index=False)


def _cut_parquet(path: Path, target: Path, rows: int, spread_column: str | None) -> None:
    import pyarrow.parquet as pq

    from mltrainer.tools.profiling.reader import arrow_to_frame

    table = pq.ParquetFile(path).read_row_groups([0]).slice(0, rows)
    if _too_narrow(arrow_to_frame(table), spread_column):
        whole = arrow_to_frame(pq.read_table(path))
        sample = whole.sample(n=min(rows, len(whole)), random_state=0).sort_index()
        sample.to_parquet(target, index=False)
        return
    pq.write_table(table, target)


def _too_narrow(frame: object, column: str | None) -> bool:
    import pandas as pd

    if column is None or not isinstance(frame, pd.DataFrame) or column not in frame.columns:
        return False
    return bool(frame[column].replace("", pd.NA).dropna().nunique() < 2)


def _delimiter(path: Path) -> str:
    if path.suffix.lower() != ".csv":
        return ","  # compressed: pandas reads it, and commas are the rule
    head = path.open("r", encoding="utf-8", errors="replace", newline="").read(64 * 1024)
    try:
        return csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","

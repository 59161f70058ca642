"""`read_table`: the one reader of tabular files used everywhere (profiling, training, predict).

CSV goes through pyarrow's multi-threaded reader with the sniffed dialect (pandas' C engine only
for thousands separators, which pyarrow cannot parse); Parquet through pyarrow; JSON and Excel
through pandas. Every failure is a DatasetError that says what is wrong and what to do.

Every format's reader shares the CSV retry and error translation here; what a read records
of rows with a wrong number of fields is ``bad_rows.BadRows``.
"""

from __future__ import annotations

import codecs
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mltrainer.state.errors import DatasetError
from mltrainer.state.masking import Masker
from mltrainer.tools.profiling.bad_rows import BadRows, BadRowsPolicy
from mltrainer.tools.profiling.clip import clip
from mltrainer.tools.profiling.formats import TableFormat
from mltrainer.tools.profiling.sniff import (
    _UTF8_MULTIBYTE,
    mixed_encoding_error,
    open_text_stream,
    sniff,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

BLOCK_BYTES = 16 << 20
STREAM_BLOCK_BYTES = 2 << 20  # pyarrow reads ~40 blocks ahead: small blocks keep memory low
MAX_BLOCK_BYTES = 256 << 20
PARQUET_BUFFER_BYTES = 1 << 16  # a head read streams pages through this buffer
NULL_VALUES = ["", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "#N/A", "<NA>", "-nan"]
_TYPE_CHANGE = re.compile(r"In CSV column #(\d+): .*CSV conversion error to (\w+)")
_T = TypeVar("_T")


def read_table(
    path: Path,
    *,
    nrows: int | None = None,
    columns: Sequence[str] | None = None,
    bad_rows: BadRowsPolicy = "error",
    masker: Masker | None = None,
) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet/JSON(-lines)/Excel file into a DataFrame, sniffing its format.

    ``nrows`` reads only the first rows; ``columns`` only those columns. Rows with a wrong
    number of fields raise a DatasetError naming their lines, unless ``bad_rows="skip"``.
    Data quoted (shortened) in an error is masked with ``masker`` first.
    """
    path = Path(path)
    fmt = sniff(path)
    frame, bad = read_frame(path, fmt, nrows=nrows, columns=columns, masker=masker)
    if bad.count and bad_rows == "error":
        raise bad.error(path.name)
    if len(frame) == 0:
        raise DatasetError(
            f"{path.name} has column names but no data rows.", next_step="Pass a file with data."
        )
    return frame


def read_frame(
    path: Path,
    fmt: TableFormat,
    *,
    nrows: int | None = None,
    columns: Sequence[str] | None = None,
    masker: Masker | None = None,
) -> tuple[pd.DataFrame, BadRows]:
    """Read with an already sniffed format; bad rows are skipped and reported, not raised."""
    if nrows is not None and nrows < 1:
        raise DatasetError("nrows must be at least 1.")
    bad = BadRows(masker=masker)
    if fmt.kind == "csv":
        if fmt.thousands:
            return _read_csv_pandas(path, fmt, nrows, columns), bad
        table = _read_csv_arrow(path, fmt, nrows, columns, bad)
        if nrows is None and bad.count and any(s.line is None for s in bad.samples):
            bad = locate_bad_rows(path, fmt, masker)  # a second pass, only for files with bad rows
        return table.to_pandas(date_as_object=False, split_blocks=True, self_destruct=True), bad
    if fmt.kind == "parquet":
        return _read_parquet(path, nrows, columns), bad
    return _read_with_pandas(path, fmt, nrows, columns, masker), bad


def _check_columns(path: Path, available: Sequence[str], wanted: Sequence[str] | None) -> None:
    missing = [c for c in wanted or () if c not in available]
    if missing:
        raise DatasetError(
            f"{path.name} has no column(s) {', '.join(map(repr, missing))}.",
            next_step=f"Its columns are: {', '.join(list(available)[:40])}.",
        )


def arrow_encoding(encoding: str | None) -> str:
    return "utf8" if encoding in (None, "utf-8", "utf-8-sig") else encoding


def csv_options(
    fmt: TableFormat,
    *,
    columns: Sequence[str] | None = None,
    bad: BadRows | None = None,
    column_types: dict[str, pa.DataType] | None = None,
    block_size: int = BLOCK_BYTES,
    use_threads: bool = True,
) -> dict[str, Any]:
    """Keyword arguments for pyarrow.csv.read_csv/open_csv from a sniffed format."""
    from pyarrow import csv

    return {
        "read_options": csv.ReadOptions(
            encoding=arrow_encoding(fmt.encoding),
            column_names=fmt.column_names,
            skip_rows=1 if fmt.header else 0,
            block_size=block_size,
            use_threads=use_threads,
        ),
        "parse_options": csv.ParseOptions(
            delimiter=fmt.delimiter or ",",
            quote_char=fmt.quotechar or False,
            newlines_in_values=fmt.multiline_values,
            invalid_row_handler=bad.handler if bad else None,
        ),
        "convert_options": csv.ConvertOptions(
            decimal_point=fmt.decimal,
            include_columns=list(columns) if columns else None,
            strings_can_be_null=True,
            null_values=NULL_VALUES,
            column_types=column_types or {},
        ),
    }


def arrow_source(path: Path, fmt: TableFormat) -> Any:
    """What pyarrow reads: the file, decompressed on the fly when it is compressed."""
    import pyarrow as pa

    if fmt.compression in (None, "gzip", "bz2", "zstd"):
        return pa.input_stream(str(path), compression=fmt.compression)
    return open_text_stream(path, fmt.compression, fmt.member)


def _read_csv_arrow(
    path: Path,
    fmt: TableFormat,
    nrows: int | None,
    columns: Sequence[str] | None,
    bad: BadRows,
) -> pa.Table:
    import pyarrow as pa
    from pyarrow import csv

    _check_columns(path, fmt.column_names, columns)
    if nrows is None:
        return with_csv_retries(
            path,
            fmt,
            lambda fmt, types, block: csv.read_csv(
                arrow_source(path, fmt),
                **csv_options(fmt, columns=columns, bad=bad, column_types=types, block_size=block),
            ),
            reset=bad.reset,
            masker=bad.masker,
        )

    def head(fmt: TableFormat, types: dict[str, pa.DataType], block: int) -> pa.Table:
        batches, total = [], 0
        block = min(block, max(1 << 16, nrows * 256))
        options = csv_options(fmt, columns=columns, bad=bad, column_types=types, block_size=block)
        with csv.open_csv(arrow_source(path, fmt), **options) as reader:
            for batch in reader:
                batches.append(batch)
                total += batch.num_rows
                if total >= nrows:
                    break
            schema = reader.schema
        return pa.Table.from_batches(batches, schema=schema).slice(0, nrows)

    return with_csv_retries(path, fmt, head, reset=bad.reset, masker=bad.masker)


def with_csv_retries(
    path: Path,
    fmt: TableFormat,
    attempt: Callable[[TableFormat, dict[str, pa.DataType], int], _T],
    *,
    reset: Callable[[], None] = lambda: None,
    block_size: int = BLOCK_BYTES,
    masker: Masker | None = None,
) -> _T:
    """Run a pyarrow CSV read, retrying what a retry can fix, and translating the rest.

    A column whose type changes after the first block is re-read as text; a row longer than a
    block gets bigger blocks; invalid UTF-8 is diagnosed (mixed encodings, or re-read as CP1252).
    """
    import pyarrow as pa

    types: dict[str, pa.DataType] = {}
    block = block_size
    for _ in range(len(fmt.column_names) + 4):
        reset()
        try:
            result = attempt(fmt, types, block)
            if fmt.encoding != "cp1252" and _has_binary_columns(getattr(result, "schema", None)):
                # pyarrow reads invalid UTF-8 as binary instead of failing: diagnose it.
                fmt = fmt.model_copy(update={"encoding": diagnose_encoding(path, fmt)})
                continue
            return result
        except pa.ArrowInvalid as exc:
            message = str(exc)
            changed = _TYPE_CHANGE.search(message)
            if changed and "invalid UTF8" not in message:
                index = int(changed.group(1))
                names = fmt.column_names
                if index < len(names) and names[index] not in types:
                    types[names[index]] = pa.string()
                    continue
            if "straddling" in message or "block size" in message.lower():
                if block < MAX_BLOCK_BYTES:
                    block = MAX_BLOCK_BYTES
                    continue
                raise DatasetError(
                    f"{path.name} has a row longer than {MAX_BLOCK_BYTES >> 20} MB.",
                    next_step="Check the file's quoting: an unclosed quote swallows the rest "
                    "of the file into one value.",
                ) from exc
            if "UTF8" in message or "UTF-8" in message:
                fmt = fmt.model_copy(update={"encoding": diagnose_encoding(path, fmt)})
                continue
            raise DatasetError(
                f"{path.name} cannot be parsed as {fmt.kind.upper()}: {clip(message, 300, masker)}",
                next_step="profile_dataset shows the sniffed format; fix the file or re-export it.",
            ) from exc
        except UnicodeDecodeError as exc:
            raise DatasetError(
                f"{path.name} is not valid {fmt.encoding} text: {exc.reason} at byte {exc.start}.",
                next_step="Re-save the file as UTF-8.",
            ) from exc
    raise DatasetError(f"{path.name} could not be read after several attempts.")


def _has_binary_columns(schema: pa.Schema | None) -> bool:
    import pyarrow as pa

    return schema is not None and any(
        pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in schema
    )


def diagnose_encoding(path: Path, fmt: TableFormat) -> str:
    """Why UTF-8 decoding failed past the sniffed head: mixed encodings, or a CP1252 file."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    multibyte = False
    bad_line: int | None = None
    with open_text_stream(path, fmt.compression, fmt.member) as stream:
        while chunk := stream.read(4 << 20):
            multibyte = multibyte or bool(_UTF8_MULTIBYTE.search(chunk))
            if bad_line is None:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    bad_line = lines + chunk[: exc.start].count(b"\n") + 1
            lines += chunk.count(b"\n")
            if bad_line is not None and multibyte:
                raise mixed_encoding_error(path.name, b"", 0, offset_line=bad_line - 1)
    if bad_line is None:
        raise DatasetError(
            f"{path.name}: pyarrow rejected the text as invalid UTF-8.",
            next_step="Re-save the file as UTF-8.",
        )
    return "cp1252"


def locate_bad_rows(path: Path, fmt: TableFormat, masker: Masker | None = None) -> BadRows:
    """A single-threaded pass that numbers the bad rows (the threaded reader cannot)."""
    import pyarrow as pa
    from pyarrow import csv

    bad = BadRows(masker=masker)
    options = csv_options(fmt, bad=bad, use_threads=False)
    options["convert_options"] = csv.ConvertOptions(
        include_columns=fmt.column_names[:1], column_types={fmt.column_names[0]: pa.string()}
    )
    with csv.open_csv(arrow_source(path, fmt), **options) as reader:
        for _ in reader:
            pass
    return bad


def _pandas_source(path: Path, fmt: TableFormat) -> Any:
    """The path, or a decompressing stream (pandas is then told nothing about compression)."""
    return path if fmt.compression is None else open_text_stream(path, fmt.compression, fmt.member)


def _read_csv_pandas(
    path: Path, fmt: TableFormat, nrows: int | None, columns: Sequence[str] | None
) -> pd.DataFrame:
    import pandas as pd

    _check_columns(path, fmt.column_names, columns)
    try:
        return pd.read_csv(
            _pandas_source(path, fmt),
            sep=fmt.delimiter,
            decimal=fmt.decimal,
            thousands=fmt.thousands,
            encoding=fmt.encoding,
            header=0 if fmt.header else None,
            names=fmt.column_names,
            usecols=list(columns) if columns else None,
            nrows=nrows,
            na_values=NULL_VALUES,
            keep_default_na=True,
            engine="c",
        )
    except pd.errors.ParserError as exc:
        raise DatasetError(
            f"{path.name} cannot be parsed: {exc}", next_step="Fix or remove the line named."
        ) from exc


def open_parquet(path: Path, *, stream: bool = False) -> pq.ParquetFile:
    """A Parquet file; for reading its first rows or a sample (``stream``), opened to stream
    pages: by default pyarrow reads and decompresses the whole column chunks of a row group
    first, which for a file written as one row group is the whole file for a 200-row look."""
    import pyarrow.parquet as pq

    if stream:
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)
    return pq.ParquetFile(path)


def pandas_metadata(schema: pa.Schema) -> dict[str, Any]:
    """What pandas wrote into a Parquet file about itself (its index, its column types): the
    file's say, not checked. Empty when it is not the JSON object pandas writes."""
    try:
        found = schema.pandas_metadata
    except ValueError:  # not JSON
        return {}
    return found if isinstance(found, dict) else {}


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """``table`` as a frame. A Parquet file's pandas metadata rebuilds the frame pandas wrote;
    when it does not apply (malformed, or naming what the file does not hold: a hostile or
    broken file), the columns are read as Arrow typed them, without it."""
    try:
        return table.to_pandas(date_as_object=False)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        metadata = table.schema.metadata or {}
        if b"pandas" not in metadata:
            raise
        kept = {key: value for key, value in metadata.items() if key != b"pandas"}
        return table.replace_schema_metadata(kept).to_pandas(date_as_object=False)


def _read_parquet(path: Path, nrows: int | None, columns: Sequence[str] | None) -> pd.DataFrame:
    import pyarrow as pa

    try:
        parquet = open_parquet(path, stream=nrows is not None)
        _check_columns(path, parquet.schema_arrow.names, columns)
        cols = list(columns) if columns else None
        if nrows is None:
            return arrow_to_frame(parquet.read(columns=cols))
        batches = []
        for batch in parquet.iter_batches(batch_size=min(nrows, 1 << 16), columns=cols):
            batches.append(batch)
            if sum(b.num_rows for b in batches) >= nrows:
                break
        schema = parquet.schema_arrow if not cols else None
        return arrow_to_frame(pa.Table.from_batches(batches, schema=schema)[:nrows])
    except (pa.ArrowInvalid, OSError) as exc:
        raise DatasetError(
            f"{path.name} is not a readable Parquet file: {exc}",
            next_step="Download or export it again.",
        ) from exc


def _read_with_pandas(
    path: Path,
    fmt: TableFormat,
    nrows: int | None,
    columns: Sequence[str] | None,
    masker: Masker | None = None,
) -> pd.DataFrame:
    import pandas as pd

    try:
        if fmt.kind == "excel":
            engine = "xlrd" if path.suffix.lower() == ".xls" else "openpyxl"
            frame = pd.read_excel(path, nrows=nrows, engine=engine)
        elif fmt.kind == "jsonl":
            frame = pd.read_json(
                _pandas_source(path, fmt), lines=True, nrows=nrows, encoding=fmt.encoding
            )
        else:
            frame = pd.read_json(_pandas_source(path, fmt), encoding=fmt.encoding)
            frame = frame.head(nrows) if nrows else frame
    except ImportError as exc:
        raise DatasetError(
            f"Reading {path.name} needs an optional package: {exc}.",
            next_step="Install openpyxl (pip install openpyxl) or save the sheet as CSV.",
        ) from exc
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise DatasetError(
            f"{path.name} is not valid {fmt.kind.upper()}: {clip(exc, 300, masker)}",
            next_step="JSON input must be an array of objects or one object per line.",
        ) from exc
    frame.columns = [str(c) for c in frame.columns]
    _check_columns(path, list(frame.columns), columns)
    return frame[list(columns)] if columns else frame

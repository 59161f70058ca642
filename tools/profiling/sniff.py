"""Sniffing a file's format from its first bytes: kind, compression, encoding, CSV dialect, header.

Only a bounded head of the file is read (plus, for a file whose first line never ends, a bounded
scan for a line break), so sniffing a 1 GB file costs milliseconds.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import lzma
import re
from collections import Counter
from pathlib import Path
from typing import BinaryIO, Literal

from mltrainer.state.errors import DatasetError
from mltrainer.tools.profiling.formats import Compression, FileKind, TableFormat

Decimal = Literal[".", ","]
HEAD_BYTES = 1 << 20
MAX_LINE_BYTES = 32 << 20
SNIFF_ROWS = 200
DELIMITERS = (",", ";", "\t", "|")
TABULAR_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".jsonl", ".ndjson", ".json")
TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json")
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")

_MAGIC_COMPRESSION: tuple[tuple[bytes, Compression], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_NUMBER_DOT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")
_NUMBER_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_NUMBER_THOUSANDS_DOT = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+,\d+$")
_SAVE_AS_UTF8 = "Re-save the file as UTF-8 (e.g. from a spreadsheet: 'CSV UTF-8')."


def check_file(path: Path) -> int:
    """The file's size, or a DatasetError saying why it is not a readable file."""
    if not path.exists():
        raise DatasetError(
            f"No file at {path}.", next_step="Check the path, or list the dataset's files."
        )
    if path.is_dir():
        found = sorted(
            p.name for p in path.iterdir() if p.suffix.lower() in TABULAR_SUFFIXES + EXCEL_SUFFIXES
        )
        hint = f" It holds: {', '.join(found[:10])}." if found else " It holds no tabular file."
        raise DatasetError(
            f"{path} is a directory, not a file.{hint}", next_step="Pass one file inside it."
        )
    size = path.stat().st_size
    if size == 0:
        raise DatasetError(f"{path.name} is empty (0 bytes).", next_step="Pass a file with data.")
    return size


def compression_of(magic: bytes) -> Compression | None:
    for prefix, name in _MAGIC_COMPRESSION:
        if magic.startswith(prefix):
            return name
    return None


def zip_member(path: Path) -> str | None:
    """The one tabular file inside a zip (e.g. train.csv.zip), or None."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = [
                i.filename
                for i in archive.infolist()
                if not i.is_dir() and i.filename.lower().endswith(TEXT_SUFFIXES)
            ]
    except zipfile.BadZipFile:
        return None
    return names[0] if len(names) == 1 else None


def open_text_stream(
    path: Path, compression: Compression | None, member: str | None = None
) -> BinaryIO:
    """A binary stream of the file's (decompressed) bytes; the caller closes it."""
    if compression == "gzip":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if compression == "bz2":
        return bz2.open(path, "rb")  # type: ignore[return-value]
    if compression == "xz":
        return lzma.open(path, "rb")  # type: ignore[return-value]
    if compression == "zstd":
        import pyarrow as pa

        return pa.input_stream(str(path), compression="zstd")  # type: ignore[return-value]
    if compression == "zip":
        import zipfile

        return zipfile.ZipFile(path).open(member or "")  # type: ignore[return-value]
    return open(path, "rb")


def read_head(
    path: Path, compression: Compression | None, member: str | None = None, limit: int = HEAD_BYTES
) -> bytes:
    try:
        with open_text_stream(path, compression, member) as stream:
            return stream.read(limit)
    except (OSError, EOFError, ValueError) as exc:
        raise DatasetError(
            f"{path.name} looks {compression}-compressed but cannot be decompressed: {exc}.",
            next_step="Download the file again; it may be truncated.",
        ) from exc


def sniff(path: Path) -> TableFormat:
    """Sniff the layout of a tabular file, or raise a DatasetError saying what is wrong with it."""
    check_file(path)
    with open(path, "rb") as raw:
        magic = raw.read(8)
    if magic.startswith(b"PAR1"):
        return TableFormat(kind="parquet", quotechar=None)
    suffix = path.suffix.lower()
    member = None
    if magic.startswith(b"PK\x03\x04") or magic.startswith(b"\xd0\xcf\x11\xe0"):
        if suffix in EXCEL_SUFFIXES:
            return TableFormat(kind="excel", quotechar=None)
        member = zip_member(path) if magic.startswith(b"PK") else None
        if member is None:
            raise DatasetError(
                f"{path.name} is an archive (zip or OLE), not a single table.",
                next_step="Extract it (download_dataset does) and pass one of its files.",
            )
        compression: Compression | None = "zip"
        suffix = Path(member).suffix.lower()
    else:
        compression = compression_of(magic)
    head = read_head(path, compression, member)
    complete = len(head) < HEAD_BYTES
    if not head.strip():
        raise DatasetError(
            f"{path.name} holds only whitespace.", next_step="Pass a file with data."
        )
    encoding = detect_encoding(head, path.name)
    text = decode_head(head, encoding, complete)
    if not complete and "\n" not in text and "\r" not in text:
        check_first_line_ends(path, compression, member)
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped[:1] in "{[" and (suffix in (".json", ".jsonl", ".ndjson") or _is_json(stripped)):
        kind: FileKind = "json" if stripped.startswith("[") else "jsonl"
        return TableFormat(
            kind=kind, compression=compression, member=member, encoding=encoding, quotechar=None
        )
    fmt = sniff_csv(text, encoding, compression, suffix)
    return fmt.model_copy(update={"member": member})


def _is_json(text: str) -> bool:
    import json

    first = text.split("\n", 1)[0].strip()
    try:
        return isinstance(json.loads(first), dict | list)
    except ValueError:
        return False


def detect_encoding(head: bytes, name: str) -> str:
    """The codec of a text file's head: BOMs, UTF-16 by its NUL pattern, UTF-8, then CP1252."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:8192]
    half = max(len(sample) // 2, 1)
    even_nuls, odd_nuls = sample[0::2].count(0), sample[1::2].count(0)
    if odd_nuls > 0.3 * half and even_nuls < 0.02 * half:
        return "utf-16-le"
    if even_nuls > 0.3 * half and odd_nuls < 0.02 * half:
        return "utf-16-be"
    controls = sum(sample.count(bytes([b])) for b in range(32) if b not in (9, 10, 12, 13))
    if controls > 0.05 * len(sample):
        raise DatasetError(
            f"{name} is a binary file, not a text table.",
            next_step="Pass a CSV, TSV, Parquet, JSON lines or Excel file.",
        )
    if 0 in head:
        line = head[: head.index(0)].count(b"\n") + 1
        raise DatasetError(
            f"{name} contains NUL bytes (first on line {line}); it is corrupt or not a text table.",
            next_step="Remove the NUL bytes or export the table again.",
        )
    body = head
    try:
        body.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(body) - 3 and exc.reason == "unexpected end of data":
            return "utf-8"  # a character cut by the head's end
        bad_at = exc.start
    if _UTF8_MULTIBYTE.search(body):
        raise mixed_encoding_error(name, body, bad_at)
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def mixed_encoding_error(name: str, data: bytes, bad_at: int, offset_line: int = 0) -> DatasetError:
    line = offset_line + data[:bad_at].count(b"\n") + 1
    return DatasetError(
        f"{name} mixes text encodings: it has UTF-8 characters, but line {line} holds bytes "
        "that are not UTF-8 (probably Latin-1/CP1252).",
        next_step=_SAVE_AS_UTF8,
    )


def decode_head(head: bytes, encoding: str, complete: bool) -> str:
    """Decode the head, dropping a last line that may be cut short."""
    text = head.decode(encoding, errors="ignore" if not complete else "replace")
    if not complete:
        cut = max(text.rfind("\n"), text.rfind("\r"))
        if cut > 0:
            text = text[: cut + 1]
    return text


def check_first_line_ends(path: Path, compression: Compression | None, member: str | None) -> None:
    """Refuse a file whose first line runs past MAX_LINE_BYTES (e.g. a 1 GB single line)."""
    with open_text_stream(path, compression, member) as stream:
        seen = 0
        while seen < MAX_LINE_BYTES:
            chunk = stream.read(1 << 20)
            if not chunk:
                return
            if b"\n" in chunk or b"\r" in chunk:
                return
            seen += len(chunk)
    raise DatasetError(
        f"The first line of {path.name} is longer than {MAX_LINE_BYTES >> 20} MB: it is not a "
        "table of rows (a minified JSON document or a binary blob?).",
        next_step="Pass a CSV/TSV with one row per line, JSON lines, Parquet or Excel.",
    )


def sniff_csv(
    text: str, encoding: str, compression: Compression | None, suffix: str
) -> TableFormat:
    text = text.lstrip("\ufeff")
    delimiter, rows = sniff_delimiter(text, prefer_tab=suffix == ".tsv")
    multiline = any("\n" in cell or "\r" in cell for row in rows for cell in row)
    header = sniff_header(rows)
    decimal, thousands = sniff_decimal(rows[1:] if header else rows, delimiter)
    width = Counter(len(r) for r in rows).most_common(1)[0][0] if rows else 1
    first = rows[0] if header and rows else []
    if first and len(first) == width - 1:
        first = ["", *first]  # R's write.csv: the row-name column has no header
    names = column_names(first, width)
    return TableFormat(
        kind="csv",
        compression=compression,
        encoding=encoding,
        delimiter=delimiter,
        decimal=decimal,
        thousands=thousands,
        header=header,
        multiline_values=multiline,
        column_names=names,
    )


def parse_rows(text: str, delimiter: str, limit: int = SNIFF_ROWS) -> list[list[str]]:
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if row:
                rows.append(row)
            if len(rows) >= limit:
                break
    except csv.Error:
        pass  # a stray quote or NUL: judge on what parsed
    return rows


def sniff_delimiter(text: str, prefer_tab: bool = False) -> tuple[str, list[list[str]]]:
    """The candidate separator that splits the sampled rows into the most consistent width."""
    best: tuple[bool, float, int, int] | None = None
    chosen, chosen_rows = ",", parse_rows(text, ",")
    for rank, delimiter in enumerate(DELIMITERS):
        rows = parse_rows(text, delimiter)
        if not rows:
            continue
        counts = Counter(len(r) for r in rows)
        width, hits = counts.most_common(1)[0]
        if width < 2:
            continue
        consistency = round(hits / len(rows), 1)
        # The header must split like the data (or one short: R's row names). This settles
        # decimal commas, where ',' also splits every data row consistently.
        header_fits = len(rows[0]) in (width, width - 1)
        order = -1 if prefer_tab and delimiter == "\t" else rank
        score = (header_fits, consistency, width, -order)
        if best is None or score > best:
            best, chosen, chosen_rows = score, delimiter, rows
    return chosen, chosen_rows


def _is_number(cell: str) -> bool:
    cell = cell.strip()
    return bool(
        _NUMBER_DOT.match(cell) or _NUMBER_COMMA.match(cell) or _NUMBER_THOUSANDS_DOT.match(cell)
    )


def sniff_header(rows: list[list[str]]) -> bool:
    """Whether the first row names the columns: False only on positive evidence it is data."""
    if len(rows) < 2:
        return True
    first, rest = rows[0], rows[1:]
    as_header = as_data = 0
    for j, cell in enumerate(first):
        values = [r[j].strip() for r in rest if j < len(r) and r[j].strip()]
        if not cell.strip() or not values:
            continue
        numeric_rest = sum(map(_is_number, values)) / len(values)
        if _is_number(cell):
            as_data += numeric_rest >= 0.9
        elif numeric_rest >= 0.9:
            as_header += 1
        elif cell.strip() in values:
            as_data += 1
    return not (as_data > 0 and as_header == 0)


def sniff_decimal(rows: list[list[str]], delimiter: str) -> tuple[Decimal, str | None]:
    """Decimal comma (and dot thousands) when the separator leaves commas free for numbers."""
    if delimiter == ",":
        return ".", None
    cells = [c.strip() for r in rows for c in r]
    comma = sum(bool(_NUMBER_COMMA.match(c)) for c in cells)
    thousands = sum(bool(_NUMBER_THOUSANDS_DOT.match(c)) for c in cells)
    dot = sum(bool(re.match(r"^[+-]?\d+\.\d+$", c)) for c in cells)
    if comma + thousands and comma + thousands >= dot:
        return ",", "." if thousands else None
    return ".", None


def column_names(header: list[str], width: int) -> list[str]:
    """Header names made unique (pandas style: a, a.1); generated names without a header."""
    if not header:
        return [f"column_{i + 1}" for i in range(width)]
    names: list[str] = []
    used: set[str] = set()
    for i, raw in enumerate(header):
        name = raw.strip() or f"Unnamed: {i}"
        candidate, k = name, 0
        while candidate in used:
            k += 1
            candidate = f"{name}.{k}"
        used.add(candidate)
        names.append(candidate)
    return names

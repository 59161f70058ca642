"""What sniffing learns about a file: the typed description every reader acts on."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

FileKind = Literal["csv", "parquet", "jsonl", "json", "excel"]
Compression = Literal["gzip", "bz2", "xz", "zstd", "zip"]


class TableFormat(BaseModel):
    """How a tabular file is laid out, as sniffed from its first bytes."""

    kind: FileKind
    compression: Compression | None = None
    member: str | None = Field(default=None, description="The table inside a one-table zip.")
    encoding: str | None = Field(
        default=None, description="Python codec name for text files: utf-8, utf-8-sig, utf-16, ..."
    )
    delimiter: str | None = Field(default=None, description="Field separator of CSV/TSV files.")
    quotechar: str | None = '"'
    decimal: Literal[".", ","] = "."
    thousands: str | None = None
    header: bool = True
    multiline_values: bool = Field(
        default=False, description="Quoted fields contain line breaks (slower parsing)."
    )
    column_names: list[str] = Field(
        default_factory=list, description="Names from the header, de-duplicated, or generated."
    )

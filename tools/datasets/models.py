"""The typed results of dataset search and download."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

Source = Literal["kaggle", "kaggle-competition", "hf", "url", "local", "sql"]

# progress(done, total, message): bytes done so far, total bytes if known, a short note.
ProgressFn = Callable[[float, float | None, str], None]


def no_progress(done: float, total: float | None, message: str) -> None:
    """The default progress callback: report nothing."""


class DatasetFile(BaseModel):
    path: str = Field(description="Path relative to local_dir, with '/' separators.")
    bytes: int
    sha256: str


class DownloadResult(BaseModel):
    dataset_id: str = Field(description="Stable id; pass it to profile_dataset or train_model.")
    ref: str = Field(description="The canonical reference the data was fetched by.")
    source: Source
    local_dir: str
    files: list[DatasetFile] = Field(description="The files (the first 100 when there are more).")
    file_count: int
    total_bytes: int
    checksum: str = Field(description="sha256 over the sorted (path, sha256) pairs.")
    cached: bool = Field(description="True when served from the local cache without a download.")
    title: str | None = None
    licence: str | None = None
    next_step: str | None = None


class SearchHit(BaseModel):
    ref: str = Field(description="Pass this to download_dataset.")
    title: str | None = None
    size: str | None = Field(default=None, description="Human-readable size, when known.")
    files: int | None = None
    licence: str | None = None
    updated: str | None = Field(default=None, description="Last update, YYYY-MM-DD.")
    votes: int | None = None
    downloads: int | None = None
    url: str | None = None
    # Filled only with detail=True.
    description: str | None = None
    tags: list[str] | None = None

    @model_serializer(mode="wrap")
    def _drop_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        # Unknown fields are left out rather than sent as null: the caller's context is scarce.
        return {key: value for key, value in handler(self).items() if value is not None}


class SearchResults(BaseModel):
    query: str
    results: list[SearchHit]
    notes: list[str] = Field(
        default_factory=list, description="Sources that failed or were skipped, and why."
    )

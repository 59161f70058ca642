"""Data tools: search_datasets and download_dataset, and the dataset resource."""

from __future__ import annotations

import threading
from typing import Annotated, Literal

import anyio.from_thread
import anyio.lowlevel
from mcp.server import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from mltrainer.server.context import AppContext, AppCtx, app_context
from mltrainer.state.errors import MLTrainerError
from mltrainer.tools.datasets.models import DownloadResult, SearchResults

SecretRef = Annotated[
    str | None,
    Field(
        max_length=80,
        description="A secret reference, never a value. Default: secret://KAGGLE for Kaggle, "
        "secret://HF_TOKEN for Hugging Face (anonymous when that secret is unset).",
    ),
]


def register(mcp: MCPServer[AppContext]) -> None:
    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True))
    async def search_datasets(
        query: Annotated[
            str, Field(min_length=1, max_length=200, description="Keywords, e.g. 'titanic'.")
        ],
        ctx: AppCtx,
        source: Annotated[
            Literal["kaggle", "hf", "all"], Field(description="Where to search; 'all' merges both.")
        ] = "all",
        limit: Annotated[int, Field(ge=1, le=100, description="Results to return.")] = 20,
        detail: Annotated[
            bool,
            Field(description="Add a short description and tags to each result (longer output)."),
        ] = False,
    ) -> SearchResults:
        """Search Kaggle and the Hugging Face Hub for datasets.

        Returns a short ranked list: ref (pass it to download_dataset), title, size, file count,
        licence, last update, votes/likes and downloads, url. Kaggle needs secret://KAGGLE; with
        source='all', a source that fails becomes a line in `notes` instead of an error.
        """
        app = app_context(ctx)
        from mltrainer.tools.datasets.search import search

        return await app.run_blocking(
            lambda: search(
                query,
                settings=app.settings,
                vault=app.vault,
                source=source,
                limit=limit,
                detail=detail,
            )
        )

    @mcp.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, open_world_hint=True
        )
    )
    async def download_dataset(
        ref: Annotated[
            str,
            Field(
                min_length=1,
                max_length=4096,
                description="kaggle:OWNER/SLUG[@VERSION], kaggle-competition:SLUG, "
                "hf:OWNER/NAME[@REVISION][:CONFIG[/SPLIT]], an https:// URL, or a local path.",
            ),
        ],
        ctx: AppCtx,
        files: Annotated[
            list[Annotated[str, Field(min_length=1, max_length=1024)]] | None,
            Field(
                max_length=1000, description="Only these files of the dataset (paths as listed)."
            ),
        ] = None,
        credentials: SecretRef = None,
        refresh: Annotated[bool, Field(description="Download again even if cached.")] = False,
    ) -> DownloadResult:
        """Download a dataset into the local cache and list its files with sizes and sha256.

        Reference forms:
        - `kaggle:OWNER/SLUG` (optionally `@VERSION`), e.g. `kaggle:uciml/iris`
        - `kaggle-competition:SLUG`, e.g. `kaggle-competition:titanic` (accept the rules on
          kaggle.com first)
        - `hf:OWNER/NAME` with optional `@REVISION` (branch, tag or commit), or `:CONFIG` /
          `:CONFIG/SPLIT` to take the Hub's Parquet conversion of one config or split, e.g.
          `hf:stanfordnlp/imdb:plain_text/train`
        - an `https://` URL to a public address (private and link-local addresses are
          refused; plain http only to 127.0.0.1 when the server allows it); zip/tar archives
          are extracted safely (no paths outside the target, no links, size and entry caps)
        - `sql:secret://NAME#TABLE` or `sql:secret://NAME?query=SELECT ...` (NAME holds a
          database URL): a read-only snapshot of one table or SELECT, with a row cap
        - a local file or directory under the data folders (MLTRAINER_DATA_ROOTS, the current
          directory unless it is / or home) or the state directory's datasets/ (read in place,
          not copied); credential files are never read
        Add `#FILE` to any of them (or use `files`) to take only some files. A repeat call is
        answered from the cache at once (`cached: true`); `refresh` forces a new download.
        Returns dataset_id (use `dataset_id/FILE` as the dataset of profile_dataset or
        train_model), local_dir, files [{path, bytes, sha256}], checksum.
        """
        app = app_context(ctx)
        from mltrainer.tools.datasets.fetch import fetch

        token = anyio.lowlevel.current_token()
        stop = threading.Event()

        def progress(done: float, total: float | None, message: str) -> None:
            # Called from the download as it goes: the way to stop it when the call is
            # cancelled or the server shuts down.
            if stop.is_set() or app.stopping.is_set():
                raise MLTrainerError("The download was stopped: its call was cancelled.")
            anyio.from_thread.run(ctx.report_progress, done, total, message, token=token)

        return await app.run_blocking(
            lambda: fetch(
                ref,
                settings=app.settings,
                store=app.store,
                vault=app.vault,
                files=files,
                credentials=credentials,
                refresh=refresh,
                progress=progress,
            ),
            on_cancel=stop.set,
        )

    @mcp.resource("mltrainer://datasets/{dataset_id}", mime_type="application/json")
    def dataset_resource(dataset_id: str, ctx: AppCtx) -> str:
        """A downloaded dataset: its reference, local directory and files, as JSON."""
        from mltrainer.tools.datasets import cache

        record = app_context(ctx).store.get_dataset(dataset_id)
        return cache.to_result(record, cached=True).model_dump_json(indent=2)

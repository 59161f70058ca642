"""Dataset search and download: Kaggle, Hugging Face, URLs and local paths behind one
``fetch(ref)``; safe archive extraction; a cache recorded in the store."""

from mltrainer.tools.datasets.fetch import fetch
from mltrainer.tools.datasets.models import DatasetFile, DownloadResult, SearchHit, SearchResults
from mltrainer.tools.datasets.refs import DatasetRef, parse_ref
from mltrainer.tools.datasets.search import search
from mltrainer.tools.datasets.table import resolve_table

__all__ = [
    "DatasetFile",
    "DatasetRef",
    "DownloadResult",
    "SearchHit",
    "SearchResults",
    "fetch",
    "parse_ref",
    "resolve_table",
    "search",
]

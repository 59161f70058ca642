"""Dataset search and download: Kaggle, Hugging Face, URLs and local paths behind one
``fetch(ref)``; safe archive extraction; a cache recorded in the store."""

from tools.datasets.fetch import fetch
from tools.datasets.models import DatasetFile, DownloadResult, SearchHit, SearchResults
from tools.datasets.refs import DatasetRef, parse_ref
from tools.datasets.search import search
from tools.datasets.table import resolve_table

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

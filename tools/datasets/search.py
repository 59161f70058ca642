"""Dataset search over Kaggle and the Hugging Face Hub, merged into one short ranked list."""

from __future__ import annotations

from itertools import chain, zip_longest
from typing import Literal

from mltrainer.state.errors import InvalidInput, MLTrainerError
from mltrainer.state.secrets import SecretVault, kaggle_api_url
from mltrainer.state.settings import Settings
from mltrainer.tools.datasets import hf_source, kaggle_source
from mltrainer.tools.datasets.models import SearchHit, SearchResults

SearchSource = Literal["kaggle", "hf", "all"]


def search(
    query: str,
    *,
    settings: Settings,
    vault: SecretVault,
    source: SearchSource = "all",
    limit: int = 20,
    detail: bool = False,
    kaggle_credentials: str = "secret://KAGGLE",
    hf_credentials: str = "secret://HF_TOKEN",
) -> SearchResults:
    """Each source ranks by its own relevance; with 'all' the lists are interleaved.

    With 'all', each source that fails becomes its own note (naming the source and what to
    do), whether or not the other one answered; a single asked source that fails is an error.
    """
    query = query.strip()
    if not query:
        raise InvalidInput(
            "The search query is empty.", next_step="Give a few keywords, e.g. 'titanic'."
        )
    wanted = ["kaggle", "hf"] if source == "all" else [source]
    found: list[list[SearchHit]] = []
    notes: list[str] = []
    for name in wanted:
        try:
            if name == "kaggle":
                creds = vault.credential(kaggle_credentials, destination=kaggle_api_url(settings))
                hits = kaggle_source.search(
                    query, limit, settings=settings, credentials=creds, detail=detail
                )
            else:
                token = hf_source.resolve_token(vault, hf_credentials, settings)
                hits = hf_source.search(query, limit, settings=settings, token=token, detail=detail)
        except MLTrainerError as exc:
            if source != "all":
                raise
            notes.append(f"{name}: {exc}")
            continue
        found.append(hits)
    merged = [hit for hit in chain.from_iterable(zip_longest(*found)) if hit is not None]
    return SearchResults(query=query, results=merged[:limit], notes=notes)

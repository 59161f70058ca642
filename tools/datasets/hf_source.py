"""Hugging Face Hub datasets through ``huggingface_hub`` (imported lazily).

The endpoint is explicit (``settings.hf_endpoint`` when the lead adds it, else ``HF_ENDPOINT``)
and so is the token: a resolved secret, or ``False`` for anonymous access — never the token
``huggingface_hub`` would find on its own in ``~/.cache/huggingface``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mltrainer.state.errors import MLTrainerError, NotFound, RemoteServiceError
from mltrainer.state.settings import Settings
from mltrainer.tools.datasets import transfer
from mltrainer.tools.datasets.kaggle_source import human_size
from mltrainer.tools.datasets.models import ProgressFn, SearchHit
from mltrainer.tools.datasets.refs import DatasetRef
from mltrainer.tools.hf import api, endpoint

PARQUET_REVISION = "refs/convert/parquet"
SKIPPED = frozenset({".gitattributes"})


def _api(settings: Settings, token: str | None) -> Any:
    return api(settings, token)


def translate(exc: Exception, what: str) -> MLTrainerError:
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    request_id = getattr(exc, "request_id", None)
    if isinstance(exc, GatedRepoError):
        return RemoteServiceError(
            f"{what} is gated on the Hugging Face Hub",
            status=status,
            request_id=request_id,
            next_step="Accept its conditions on the dataset page while signed in, and make sure "
            "secret://HF_TOKEN holds a token of that account.",
        )
    if isinstance(exc, RepositoryNotFoundError) or status == 401:
        return NotFound(
            f"The Hugging Face Hub has no dataset {what} (or it is private).",
            next_step="Check the name with search_datasets (source='hf'); for a private "
            "dataset set secret://HF_TOKEN.",
        )
    if isinstance(exc, RevisionNotFoundError):
        return NotFound(
            f"{what}: the revision does not exist.",
            next_step="Use a branch, tag or commit of the dataset, or drop @REVISION.",
        )
    if isinstance(exc, RemoteEntryNotFoundError) or status == 404:
        return NotFound(f"{what}: file not found on the Hub.", next_step="Check the file names.")
    if isinstance(exc, HfHubHTTPError) and status is not None:
        return RemoteServiceError(
            f"The Hugging Face Hub answered an error for {what}",
            status=status,
            request_id=request_id,
            next_step="Wait a minute and try again." if status == 429 else "Try again later.",
        )
    return RemoteServiceError(
        f"Could not reach the Hugging Face Hub for {what} ({type(exc).__name__}: {str(exc)[:200]}).",
        next_step="Check the network connection (or HF_ENDPOINT) and try again.",
    )


def _repo_files(ref: DatasetRef, info: Any) -> list[tuple[str, int | None]]:
    siblings = [(s.rfilename, s.size) for s in (info.siblings or []) if s.rfilename not in SKIPPED]
    if not ref.config:
        return siblings
    chosen = []
    for path, size in siblings:
        parts = path.split("/")
        if parts[0] != ref.config or len(parts) < 2:
            continue
        if ref.split and parts[1] not in (ref.split, f"partial-{ref.split}"):
            continue
        chosen.append((path, size))
    if not chosen:
        configs = sorted({p.split("/")[0] for p, _ in siblings if "/" in p})
        raise NotFound(
            f"hf:{ref.owner}/{ref.name} has no Parquet conversion for "
            f"{ref.config}{'/' + ref.split if ref.split else ''}.",
            next_step=f"Known configs: {', '.join(configs[:20]) or 'none'}. Or drop :CONFIG "
            "and pick the repository's files with the files argument.",
        )
    return chosen


def download(
    ref: DatasetRef,
    selection: list[str],
    target: Path,
    *,
    settings: Settings,
    token: str | None,
    progress: ProgressFn,
) -> dict[str, object]:
    from huggingface_hub import hf_hub_download

    repo_id = f"{ref.owner}/{ref.name}"
    revision = PARQUET_REVISION if ref.config else ref.revision
    api = _api(settings, token)
    try:
        info = api.dataset_info(repo_id, revision=revision, files_metadata=True)
    except Exception as exc:
        raise translate(exc, ref.text) from None
    available = dict(_repo_files(ref, info))
    missing = [name for name in selection if name not in available]
    if missing:
        listed = ", ".join(sorted(available)[:20])
        raise NotFound(
            f"{ref.text} has no file(s) {', '.join(missing)}.",
            next_step=f"Available files include: {listed}.",
        )
    wanted = selection or sorted(available)
    sizes = [available[name] or 0 for name in wanted]
    if sum(sizes) > settings.max_download_bytes:
        raise transfer.too_big(ref.text, sum(sizes), settings.max_download_bytes)
    total, done = sum(sizes), 0
    for index, (name, size) in enumerate(zip(wanted, sizes, strict=True)):
        note = f"downloading {name} ({index + 1}/{len(wanted)})"
        counter = _Counter(
            done, total or None, settings.max_download_bytes, ref.text, note, progress
        )
        try:
            hf_hub_download(
                repo_id,
                name,
                repo_type="dataset",
                revision=info.sha or revision,
                local_dir=target,
                endpoint=endpoint(settings),
                token=token or False,
                tqdm_class=counter.bar_class(),
            )
        except MLTrainerError:
            raise
        except Exception as exc:
            raise translate(exc, f"{ref.text} file {name}") from None
        done += size
        progress(done, total or None, f"downloaded {name}")
    return {
        "title": repo_id,
        "licence": _licence(info),
        "revision": info.sha,
        "url": f"{endpoint(settings)}/datasets/{repo_id}",
    }


class _Counter:
    """Byte progress from huggingface_hub's progress-bar hook, with the download cap enforced
    on the bytes that actually arrive (the sizes in the metadata were checked up front)."""

    def __init__(
        self, done: int, total: int | None, cap: int, what: str, note: str, progress: ProgressFn
    ) -> None:
        self.done, self.total, self.cap = done, total, cap
        self.what, self.note, self.progress = what, note, progress

    def add(self, n: float | None) -> None:
        self.done += int(n or 0)
        if self.done > self.cap:
            raise transfer.too_big(self.what, None, self.cap)
        self.progress(self.done, self.total, self.note)

    def bar_class(self) -> type:
        counter = self

        class Bar:  # the subset of tqdm that hf_hub_download uses
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                pass

            def __enter__(self) -> Bar:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def update(self, n: float | None = 1) -> None:
                counter.add(n)

            def update_progress(self, *args: Any, **kwargs: Any) -> None:
                pass

            def close(self) -> None:
                pass

        return Bar


def _licence(info: Any) -> str | None:
    card = getattr(info, "card_data", None)
    licence = getattr(card, "license", None) if card is not None else None
    if isinstance(licence, list):
        licence = ", ".join(str(x) for x in licence)
    if licence:
        return str(licence)
    for tag in getattr(info, "tags", None) or []:
        if str(tag).startswith("license:"):
            return str(tag).split(":", 1)[1]
    return None


def search(
    query: str, limit: int, *, settings: Settings, token: str | None, detail: bool
) -> list[SearchHit]:
    expand = ["downloads", "likes", "lastModified", "tags", "cardData", "mainSize"]
    if detail:
        expand.append("description")
    api = _api(settings, token)
    try:
        found = list(api.list_datasets(search=query, limit=limit, expand=expand))
    except Exception as exc:
        raise translate(exc, f"search '{query}'") from None
    return [_hit(info, settings, detail) for info in found[:limit]]


def _hit(info: Any, settings: Settings, detail: bool) -> SearchHit:
    hit = SearchHit(
        ref=f"hf:{info.id}",
        title=info.id,
        size=human_size(getattr(info, "main_size", None)),
        licence=_licence(info),
        updated=info.last_modified.date().isoformat() if info.last_modified else None,
        votes=info.likes,
        downloads=info.downloads,
        url=f"{endpoint(settings)}/datasets/{info.id}",
    )
    if detail:
        description = getattr(info, "description", None)
        hit.description = description[:500] if description else None
        tags = [t for t in info.tags or [] if not str(t).startswith("license:")]
        hit.tags = tags[:10] or None
    return hit


def resolve_token(vault: Any, reference: str | None, settings: Settings) -> str | None:
    """The HF token for ``reference``, bound to the configured Hub, or None (anonymous) when
    that secret is not set; a secret bound elsewhere or not declared is an error."""
    from mltrainer.state.secrets import SecretNotSet

    try:
        return str(
            vault.credential_value(reference or "secret://HF_TOKEN", destination=endpoint(settings))
        )
    except SecretNotSet:
        return None

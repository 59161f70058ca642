"""From whatever ``train_model(dataset=...)`` receives to the path of one tabular file."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from mltrainer.state.errors import DatasetError, InvalidInput, NotFound
from mltrainer.state.guard import PathPolicy
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.datasets import cache
from mltrainer.tools.datasets.refs import parse_ref

TABULAR_SUFFIXES = (
    ".csv", ".tsv", ".txt", ".parquet", ".pq", ".jsonl", ".ndjson", ".json", ".xlsx", ".xls",
    ".feather", ".arrow", ".csv.gz", ".tsv.gz", ".csv.zip", ".csv.bz2", ".csv.xz",
)  # fmt: skip
PREFERRED_STEMS = ("train", "training", "data", "dataset")


def is_tabular(name: str) -> bool:
    return name.lower().endswith(TABULAR_SUFFIXES)


def resolve_table(ref_or_path: str, store: Store, settings: Settings, vault: SecretVault) -> Path:
    """The path of ONE tabular file for a local path, dataset_id, kaggle:, hf: or URL ref.

    A local file is returned as it is (after the path guard), without hashing or copying.
    Several candidate files raise InvalidInput listing them and how to pick one. The file
    returned always passed the guard: a pick inside a dataset must not lead out of it.
    """
    policy = PathPolicy(settings)
    parsed = parse_ref(ref_or_path)
    if parsed.source == "local" and parsed.path is not None and parsed.file is None:
        path = policy.check(parsed.path)
        if path.is_file():
            return path
        names = [n for n in policy.visible(path, cache.walk_files(path)) if is_tabular(n)]
        return policy.check_member(path, _pick(names, ref_or_path, parsed.text))
    # Here, not at the top: the sources' clients (httpx, kaggle's, the Hub's) cost the server
    # ~8 MB, and a local file needs none of them.
    from mltrainer.tools.datasets.fetch import cached_record, fetch

    if parsed.dataset_id:
        record = cached_record(store, parsed.dataset_id)
    else:
        result = fetch(ref_or_path, settings=settings, store=store, vault=vault)
        record = store.get_dataset(result.dataset_id)
    names = [str(f["path"]) for f in record.files]
    if parsed.file:
        if parsed.file not in names:
            raise NotFound(
                f"{parsed.text} has no file '{parsed.file}'.",
                next_step=f"Files: {', '.join(names[:20])}.",
            )
        return policy.check_member(Path(record.local_dir), parsed.file)
    base = record.id if parsed.dataset_id else parsed.text
    pick = _pick([n for n in names if is_tabular(n)], ref_or_path, base)
    return policy.check_member(Path(record.local_dir), pick)


def _pick(names: list[str], original: str, base: str) -> str:
    if not names:
        raise DatasetError(
            f"{original} contains no tabular file (CSV, TSV, Parquet, JSON lines, Excel).",
            next_step="Call download_dataset to see its files.",
        )
    if len(names) == 1:
        return names[0]
    preferred = [n for n in names if _stem(n) in PREFERRED_STEMS]
    if len(preferred) == 1:
        return preferred[0]
    sep = "/" if base.startswith("ds_") else "#"
    shown = ", ".join(names[:20]) + (f" (and {len(names) - 20} more)" if len(names) > 20 else "")
    raise InvalidInput(
        f"{original} holds several tables: {shown}.",
        next_step=f"Pick one, e.g. dataset='{base}{sep}{names[0]}'.",
    )


def _stem(name: str) -> str:
    stem = PurePosixPath(name).name.lower()
    for suffix in sorted(TABULAR_SUFFIXES, key=len, reverse=True):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem

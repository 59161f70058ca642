"""Checks a training or prediction request against its data before any job starts, so that
a bad path or an unknown column is a clear error at once, not a failed job later."""

from __future__ import annotations

from pathlib import Path

from state.secrets import SecretVault
from state.settings import Settings
from state.store import Store
from tools.errors import InvalidInput
from tools.training.request import TrainRequest

HEAD_ROWS = 200


def resolve_dataset(dataset: str, settings: Settings, store: Store, vault: SecretVault) -> Path:
    """A local tabular file for whatever the caller gave: path, dataset_id, or ref."""
    from tools.datasets import resolve_table

    return resolve_table(dataset, store, settings, vault)


def prepare_train_request(
    request: TrainRequest, settings: Settings, store: Store, vault: SecretVault
) -> TrainRequest:
    from tools.profiling import read_table

    path = resolve_dataset(request.dataset, settings, store, vault)
    head = read_table(path, nrows=HEAD_ROWS)
    columns = [str(c) for c in head.columns]
    if request.task == "clustering":
        if request.target is not None and request.target not in columns:
            raise _unknown_column("target", request.target, columns)
    elif request.target is None:
        raise InvalidInput(
            "No target column given.",
            next_step=f"Pass target= one of: {_listing(columns)} (or task='clustering').",
        )
    elif request.target not in columns:
        raise _unknown_column("target", request.target, columns)
    for field in ("group_column", "time_column"):
        value = getattr(request, field)
        if value is not None and value not in columns:
            raise _unknown_column(field, value, columns)
    unknown = [c for c in request.exclude_columns if c not in columns]
    if unknown:
        raise _unknown_column("exclude_columns", unknown[0], columns)
    if request.target is not None and head[request.target].isna().all():
        raise InvalidInput(
            f"The target column '{request.target}' is empty in the first {len(head)} rows.",
            next_step="Check that this is the right column and file.",
        )
    return request.model_copy(update={"dataset": str(path)})


def _listing(columns: list[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:30])
    return shown + (f" ... ({len(columns)} in all)" if len(columns) > 30 else "")


def _unknown_column(field: str, name: str, columns: list[str]) -> InvalidInput:
    return InvalidInput(
        f"Column '{name}' (given as {field}) is not in the dataset.",
        next_step=f"The columns are: {_listing(columns)}. Names are case-sensitive.",
    )

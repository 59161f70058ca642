"""Checks a training or prediction request against its data before any job starts, so that
a bad path or an unknown column is a clear error at once, not a failed job later.

This runs in the server process, which stays up: the data is looked at with `peek_table`
(the columns and the target's first values, read without pandas), so that checking one request
does not leave the server holding pandas and pyarrow for the rest of its life.
"""

from __future__ import annotations

from pathlib import Path

from mltrainer.state.errors import InvalidInput
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.profiling.peek import Cell, TablePeek, peek_table
from mltrainer.tools.training.request import (
    CLASSIFICATION_METRICS,
    FAMILY_ALIASES,
    METRIC_ALIASES,
    MODEL_FAMILIES,
    REGRESSION_METRICS,
    TrainRequest,
)

HEAD_ROWS = 200
MIN_LABELLED_ROWS = 10


def resolve_dataset(dataset: str, settings: Settings, store: Store, vault: SecretVault) -> Path:
    """A local tabular file for whatever the caller gave: path, dataset_id, or ref."""
    from mltrainer.tools.datasets.table import resolve_table

    return resolve_table(dataset, store, settings, vault)


def prepare_train_request(
    request: TrainRequest, settings: Settings, store: Store, vault: SecretVault
) -> TrainRequest:
    path = resolve_dataset(request.dataset, settings, store, vault)
    wanted = [request.target] if request.target is not None else []
    head = peek_table(path, HEAD_ROWS, columns=wanted)
    columns = head.columns
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
    for field in ("exclude_columns", "keep_columns"):
        unknown = [c for c in getattr(request, field) if c not in columns]
        if unknown:
            raise _unknown_column(field, unknown[0], columns)
    if request.target is not None and all(v is None for v in head.values[request.target]):
        raise InvalidInput(
            f"The target column '{request.target}' is empty in the first {head.rows} rows.",
            next_step="Check that this is the right column and file.",
        )
    whole_file = head.rows < HEAD_ROWS
    if whole_file and request.target is not None and request.task != "clustering":
        _check_size(request.target, head.values[request.target])
    models = _check_models(request.models)
    metric = _check_metric(request, head)
    update = {"dataset": str(path), "dataset_ref": request.dataset, "models": models}
    return request.model_copy(update={**update, "metric": metric})


def _check_size(target: str, values: list[Cell]) -> None:
    present = [v for v in values if v is not None]
    labelled = len(present)
    if labelled < MIN_LABELLED_ROWS:
        raise InvalidInput(
            f"The dataset has only {labelled} row(s) with a target value; at least "
            f"{MIN_LABELLED_ROWS} are needed to train and to measure the model honestly.",
            next_step="Use a larger dataset.",
        )
    if len(set(present)) < 2:
        raise InvalidInput(
            f"The target '{target}' has a single value ({present[0]!r}): "
            "there is nothing to learn.",
            next_step="Choose another target column, or use task='clustering' without a target.",
        )


def _check_models(models: list[str] | None) -> list[str] | None:
    if not models:
        return None
    unknown = [
        m for m in models if m.lower() not in MODEL_FAMILIES and m.lower() not in FAMILY_ALIASES
    ]
    if unknown:
        raise InvalidInput(
            f"Unknown model famil{'y' if len(unknown) == 1 else 'ies'}: {', '.join(map(repr, unknown))}.",
            next_step=f"Use some of: {', '.join(MODEL_FAMILIES)}.",
        )
    return models


def _check_metric(request: TrainRequest, head: TablePeek) -> str | None:
    if request.metric is None:
        return None
    name = request.metric.strip().lower()
    name = METRIC_ALIASES.get(name, name)
    for_task = {
        "classification": CLASSIFICATION_METRICS,
        "regression": REGRESSION_METRICS,
        "forecast": REGRESSION_METRICS,
        "clustering": ("silhouette",),
    }
    known = sorted({m for names in for_task.values() for m in names})
    if name not in known:
        raise InvalidInput(
            f"Unknown metric '{request.metric}'.", next_step=f"Use one of: {', '.join(known)}."
        )
    kind = _task_kind(request, head)
    if kind is not None and name not in for_task[kind]:
        raise InvalidInput(
            f"The metric '{request.metric}' does not apply to a {kind} task.",
            next_step=f"Use one of: {', '.join(for_task[kind])}.",
        )
    return name


def _task_kind(request: TrainRequest, head: TablePeek) -> str | None:
    """The family of the task, when the request or the target's type settles it."""
    if request.task in ("binary", "multiclass", "text_classification"):
        return "classification"
    if request.task != "auto":
        return request.task
    if request.target is not None and not head.numeric[request.target]:
        return "classification"
    return None


def _listing(columns: list[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:30])
    return shown + (f" ... ({len(columns)} in all)" if len(columns) > 30 else "")


def _unknown_column(field: str, name: str, columns: list[str]) -> InvalidInput:
    return InvalidInput(
        f"Column '{name}' (given as {field}) is not in the dataset.",
        next_step=f"The columns are: {_listing(columns)}. Names are case-sensitive.",
    )

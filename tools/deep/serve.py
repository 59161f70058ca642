"""``predict`` for a registered deep-learning model: new inputs in, a predictions CSV out.

The inputs are a folder of images (every image under it, in path order), one image file, a
text file (one input a line) or a table (its image-path or text column). The model is the
folder adopted into ``MLTRAINER_HOME/models/<model_id>/``, run by predict.py here; the CSV
has one row an input: ``input``, ``prediction`` and, for classifiers, ``proba_<label>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mltrainer.state.errors import InvalidInput
from mltrainer.state.files import private_dir, write_text
from mltrainer.state.models import ArtifactRecord, ModelRecord, utcnow
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store, new_id
from mltrainer.tools.deep import frames, images
from mltrainer.tools.deep.predict import IMAGE_TASKS, MAX_INPUTS, DeepPrediction, predict_folder

PREVIEW_ROWS = 5
TEXT_COLUMNS = ("text", "sentence", "tokens", "source", "document", "instruction", "prompt")
IMAGE_COLUMNS = ("image", "image_path", "path", "file", "filename")


class DeepPredictResult(BaseModel):
    model_id: str
    predictions_path: str
    n_rows: int
    columns: list[str]
    preview: list[dict[str, Any]]


def is_deep_model(record: ModelRecord) -> bool:
    return record.summary.get("kind") == "deep"


def predict_model(
    record: ModelRecord,
    dataset: str,
    settings: Settings,
    store: Store,
    vault: SecretVault,
    output: str | None = None,
) -> DeepPredictResult:
    """Predict every input of ``dataset`` (a path, dataset_id or reference) with a deep model;
    the CSV is written masked."""
    from mltrainer.tools.runtimes.jobspec import resolve_input

    if output is not None:
        raise InvalidInput(
            "output= (a database table) is offered for tabular models only.",
            next_step="Leave output out: the predictions CSV's path is in the result.",
        )
    source = resolve_input(dataset, settings, store, vault)
    task = record.task
    inputs = _inputs(source, task in IMAGE_TASKS)
    found = predict_folder(Path(record.path), inputs)
    rows = [_row(p) for p in found.predictions]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    folder = private_dir(settings.home / "predictions")
    stamp = utcnow().strftime("%Y%m%dT%H%M%S")
    target = folder / f"{record.id}-{stamp}-{new_id('p')[-6:]}.csv"
    import pandas as pd

    write_text(target, pd.DataFrame(rows, columns=columns).to_csv(index=False), store.masker)
    store.add_artifact(
        ArtifactRecord(
            id=new_id("art"),
            model_id=record.id,
            kind="predictions",
            path=str(target),
            media_type="text/csv",
            bytes=target.stat().st_size,
        )
    )
    return DeepPredictResult(
        model_id=record.id,
        predictions_path=str(target),
        n_rows=len(rows),
        columns=columns,
        preview=[
            {k: store.masker.mask_obj(v) for k, v in row.items()} for row in rows[:PREVIEW_ROWS]
        ],
    )


def _inputs(source: Path, image_task: bool) -> list[str]:
    if image_task and source.is_dir():
        found = sorted(str(p) for p in source.rglob("*") if images.is_image(p))
    elif image_task and images.is_image(source):
        found = [str(source)]
    elif not image_task and source.suffix.lower() == ".txt":
        lines = source.read_text(encoding="utf-8").splitlines()
        found = [line for line in lines if line.strip()]
    elif source.is_file():
        found = _column(source, image_task)
    else:
        found = []
    if not found or len(found) > MAX_INPUTS:
        kind = "images" if image_task else "texts"
        raise InvalidInput(
            f"{source.name} holds {len(found)} {kind} to predict; between 1 and {MAX_INPUTS} "
            "are taken.",
            next_step="Pass a folder of images or an image file"
            if image_task
            else "Pass a .txt file (one text a line) or a table with a 'text' column.",
        )
    return found


def _column(table: Path, image_task: bool) -> list[str]:
    frame = frames.read_table(table)
    names = {str(c).lower(): str(c) for c in frame.columns}
    wanted = IMAGE_COLUMNS if image_task else TEXT_COLUMNS
    column = next((names[c] for c in wanted if c in names), None)
    if column is None:
        raise InvalidInput(
            f"{table.name} has no {' / '.join(wanted[:3])} column (its columns: "
            f"{', '.join(list(names.values())[:20])}).",
            next_step=f"Name the inputs' column {wanted[0]!r}.",
        )
    values = frame[column].dropna().tolist()
    if image_task:  # paths relative to the table, as the training layouts read them
        return [str((table.parent / str(v)).resolve()) for v in values]
    return [" ".join(map(str, v)) if isinstance(v, list) else str(v) for v in values]


def _row(found: DeepPrediction) -> dict[str, Any]:
    row: dict[str, Any] = {"input": found.input}
    if found.boxes is not None:
        row["prediction"] = json.dumps([b.model_dump() for b in found.boxes])
    elif found.tags is not None:
        row["prediction"] = " ".join(found.tags)
    elif found.value is not None:
        row["prediction"] = found.value
    elif found.text is not None:
        row["prediction"] = found.text
    else:
        row["prediction"] = found.label
        for label, score in (found.scores or {}).items():
            row[f"proba_{label}"] = round(float(score), 6)
    return row

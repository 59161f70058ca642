"""Predict locally with a model folder written by a training script (needs the ``deep`` extra).

Inputs are checked here (image files that exist and decode, non-empty texts); the model code
is the same ``deep_infer`` module each script used to reload its own output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mltrainer.state.errors import InvalidInput, NotFound
from mltrainer.tools.deep import images
from mltrainer.tools.deep.models import DeepTask

IMAGE_TASKS = ("image_classification", "image_regression", "object_detection")
MAX_INPUTS = 1000


class Box(BaseModel):
    label: str
    score: float
    box: list[float] = Field(description="[x0, y0, x1, y1] in pixels of the input image.")


class DeepPrediction(BaseModel):
    input: str
    label: str | None = None
    scores: dict[str, float] | None = None
    value: float | None = None
    boxes: list[Box] | None = None
    tags: list[str] | None = None
    text: str | None = None


class DeepPredictions(BaseModel):
    task: DeepTask
    model_dir: str
    labels: list[str] = Field(description="The label set of the model, empty for regression.")
    predictions: list[DeepPrediction]


def read_task(model_dir: Path) -> tuple[DeepTask, list[str]]:
    metrics = model_dir / "metrics.json"
    if not metrics.is_file():
        raise NotFound(
            f"{model_dir} is not a model folder of a deep-learning run (no metrics.json).",
            next_step="Pass the folder a training script wrote.",
        )
    data = json.loads(metrics.read_text(encoding="utf-8"))
    return data["task"], [str(label) for label in data.get("labels") or []]


def predict_folder(
    model_dir: Path, inputs: list[str], *, threshold: float = 0.5, max_new_tokens: int = 64
) -> DeepPredictions:
    """Image paths for image tasks, texts otherwise (words split on spaces for tagging)."""
    task, labels = read_task(model_dir)
    if not inputs or len(inputs) > MAX_INPUTS:
        raise InvalidInput(f"Pass between 1 and {MAX_INPUTS} inputs (got {len(inputs)}).")
    try:
        from mltrainer.tools.deep.templates import deep_infer
    except ImportError as exc:
        raise InvalidInput(
            f"Predicting with a deep-learning model needs the 'deep' extra ({exc}).",
            next_step="pip install torch, then pip install 'mltrainer-mcp[deep]'.",
        ) from exc
    values = _load_inputs(task, inputs)
    raw = deep_infer.predict(model_dir, values, threshold=threshold, max_new_tokens=max_new_tokens)
    return DeepPredictions(
        task=task,
        model_dir=str(model_dir),
        labels=labels,
        predictions=[_typed(task, given, found) for given, found in zip(inputs, raw, strict=True)],
    )


def _load_inputs(task: DeepTask, inputs: list[str]) -> list[Any]:
    if task in IMAGE_TASKS:
        from PIL import Image

        paths = [Path(item) for item in inputs]
        absent = [str(p) for p in paths if not p.is_file()]
        if absent:
            raise NotFound(
                f"Image(s) not found: {', '.join(absent[:5])}.", next_step="Check paths."
            )
        images.check_decodes(paths, "the inputs")
        return [Image.open(path) for path in paths]
    if any(not isinstance(item, str) or not item.strip() for item in inputs):
        raise InvalidInput("Every input must be a non-empty text.")
    if task == "token_classification":
        return [item.split() for item in inputs]
    return list(inputs)


def _typed(task: DeepTask, given: str, found: Any) -> DeepPrediction:
    if task == "object_detection":
        return DeepPrediction(input=given, boxes=[Box(**box) for box in found])
    if task == "token_classification":
        return DeepPrediction(input=given, tags=list(found))
    if isinstance(found, str):
        return DeepPrediction(input=given, text=found)
    if "value" in found:
        return DeepPrediction(input=given, value=found["value"])
    return DeepPrediction(input=given, label=found["label"], scores=found["scores"])

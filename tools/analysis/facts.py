"""What the analysis needs to know about a trained model, read from its folder.

The model folder is the contract between training and everything after it: ``meta.json``
(required), ``plan.json`` and ``manifest.json`` (read when present). Only the
fields the analysis uses are parsed, and unknown ones are ignored, so this package does not
import the training package (training calls the analysis when it iterates, and a package must
not import one that imports it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from mltrainer.state.errors import InvalidInput, NotFound

CLASSIFICATION = ("binary", "multiclass", "text_classification")
META_FILE = "meta.json"


class ModelFacts(BaseModel):
    model_id: str
    job_id: str | None = None
    task: str
    target: str | None
    features: list[str]
    classes: list[str] | None = None
    positive_class: str | None = None
    metric: str
    column_kinds: dict[str, str] = Field(
        default_factory=dict, description="numeric, categorical, high_cardinality, datetime, text"
    )
    validation: str | None = None
    group_column: str | None = None
    time_column: str | None = None
    class_weight: str | None = None
    families: list[str] = Field(default_factory=list, description="Families in the plan.")
    data_sha256: str | None = None

    @property
    def classification(self) -> bool:
        return self.task in CLASSIFICATION

    @property
    def positive(self) -> str | None:
        """The class whose probability a binary model's calibration is read on."""
        if self.task != "binary" or not self.classes:
            return None
        if self.positive_class in self.classes:
            return self.positive_class
        return self.classes[1] if len(self.classes) > 1 else self.classes[0]


def model_facts(folder: Path) -> ModelFacts:
    """The facts of the model saved in ``folder``; NotFound if it holds no model metadata."""
    meta = _read(folder / META_FILE)
    if meta is None:
        raise NotFound(
            f"The model folder {folder} has no {META_FILE}.",
            next_step="Train the model again with train_model.",
        )
    plan = _read(folder / "plan.json") or {}
    manifest = _read(folder / "manifest.json") or {}
    validation = plan.get("validation") or {}
    try:
        return ModelFacts(
            model_id=meta["model_id"],
            job_id=meta.get("job_id"),
            task=meta["task"],
            target=meta.get("target"),
            features=meta.get("features") or [],
            classes=meta.get("classes"),
            positive_class=meta.get("positive_class"),
            metric=meta.get("metric") or "",
            column_kinds={c["name"]: c["kind"] for c in plan.get("columns") or []},
            validation=validation.get("kind"),
            group_column=validation.get("group_column"),
            time_column=validation.get("time_column") or plan.get("time_column"),
            class_weight=plan.get("class_weight"),
            families=[f["name"] for f in plan.get("families") or []],
            data_sha256=(manifest.get("data") or {}).get("sha256"),
        )
    except (KeyError, TypeError, ValidationError) as error:
        raise InvalidInput(
            f"The model metadata in {folder} is malformed ({error}).",
            next_step="Train the model again with train_model.",
        ) from error


def _read(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InvalidInput(
            f"{path.name} of the model cannot be read ({error}).",
            next_step="Train the model again with train_model.",
        ) from error
    return data if isinstance(data, dict) else None

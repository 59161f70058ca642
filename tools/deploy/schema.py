"""The input schema a Space's form is built from: one field per feature, with its kind and an
example value, taken from the training data's profile — never from its rows.

A numeric field's example is the column's median (a summary, not a value someone entered); a
categorical field offers the column's most frequent values as choices. The profile is read
from ``input_schema.json`` in the model folder when training left one, else computed from the
training data when that file is still there unchanged (its sha256 is in the manifest), else the
fields carry their kinds only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, ValidationError

from mltrainer.tools.deploy.folder import ModelFolder

if TYPE_CHECKING:
    from mltrainer.tools.profiling import ColumnProfile, DatasetProfile

SCHEMA_FILE = "input_schema.json"
MAX_CHOICES = 50
MAX_EXAMPLE_CHARS = 200


class InputField(BaseModel):
    name: str
    kind: str = Field(description="numeric, categorical, boolean, datetime or text.")
    example: float | str | None = None
    choices: list[str] = Field(default_factory=list)


class InputSchema(BaseModel):
    fields: list[InputField]
    source: str = Field(description="'profile', 'input_schema.json' or 'plan' (kinds only).")


def input_schema(folder: ModelFolder) -> InputSchema:
    """The form's fields for the model's features, in the order the model takes them."""
    saved = folder.path / SCHEMA_FILE
    if saved.is_file():
        try:
            return InputSchema.model_validate_json(saved.read_text(encoding="utf-8"))
        except (OSError, ValidationError):
            pass  # a damaged file: build the schema again below
    kinds = {column.name: column.kind for column in folder.plan.columns}
    profile = _training_profile(folder)
    if profile is None:
        fields = [InputField(name=n, kind=kinds.get(n, "text")) for n in folder.meta.features]
        return InputSchema(fields=fields, source="plan")
    return schema_from_profile(profile, folder.meta.features, kinds)


def schema_from_profile(
    profile: DatasetProfile, features: list[str], kinds: dict[str, str]
) -> InputSchema:
    """Fields for ``features`` from a profile; ``kinds`` (the planner's) win over the profile's.

    Training can call this with the profile it already has and write the result to
    ``input_schema.json`` beside the model.
    """
    columns = {column.name: column for column in profile.columns}
    fields = []
    for name in features:
        column = columns.get(name)
        kind = kinds.get(name) or (column.kind if column else "text")
        fields.append(_field(name, kind, column))
    return InputSchema(fields=fields, source="profile")


def write_input_schema(folder: Path, schema: InputSchema) -> Path:
    path = folder / SCHEMA_FILE
    path.write_text(schema.model_dump_json(indent=2), encoding="utf-8")
    return path


def _field(name: str, kind: str, column: ColumnProfile | None) -> InputField:
    if column is None:
        return InputField(name=name, kind=kind)
    if kind == "numeric":
        median = column.stats.median if column.stats else None
        return InputField(name=name, kind=kind, example=_round(median))
    if kind in ("categorical", "boolean"):
        choices = [value.value for value in column.top_values][:MAX_CHOICES]
        return InputField(
            name=name, kind=kind, example=choices[0] if choices else None, choices=choices
        )
    example = column.examples[0][:MAX_EXAMPLE_CHARS] if column.examples else None
    return InputField(name=name, kind=kind, example=example)


def _round(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.4g}")


def _training_profile(folder: ModelFolder) -> DatasetProfile | None:
    """The profile of the training data, if that file is still there and unchanged."""
    from mltrainer.state.errors import MLTrainerError
    from mltrainer.tools.profiling.profile import profile

    data = folder.manifest.data
    if not data.path or not data.sha256:
        return None
    path = Path(data.path)
    try:
        if not path.is_file() or _sha256(path) != data.sha256:
            return None
        return profile(path, seed=folder.manifest.seed or 0)
    except (OSError, MLTrainerError):
        return None  # gone or unreadable now: the form falls back to kinds without examples


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

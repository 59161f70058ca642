"""Profiling as the project offers it: resolve the dataset, profile it, store the artifacts."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from mltrainer.state.errors import InvalidInput, NotFound
from mltrainer.state.files import private_dir, write_text
from mltrainer.state.models import ArtifactRecord
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store, new_id
from mltrainer.tools.profiling.models import DatasetProfile
from mltrainer.tools.profiling.profile import profile

MAX_LISTED_COLUMNS = 60
PROFILE_ID = re.compile(r"^prof_[0-9a-f]{12}$")


def resolve_dataset(dataset: str, settings: Settings, store: Store, vault: SecretVault) -> Path:
    """One tabular file from a local path (under the allowed roots), a dataset_id or a ref."""
    from mltrainer.tools.datasets.table import resolve_table

    return resolve_table(dataset, store, settings, vault)


def _record(store: Store, path: Path, kind: str, media_type: str) -> ArtifactRecord:
    data = path.read_bytes()
    return store.add_artifact(
        ArtifactRecord(
            id=new_id("art"),
            kind=kind,
            path=str(path),
            media_type=media_type,
            bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
    )


def profile_dataset(
    dataset: str,
    target: str | None,
    *,
    settings: Settings,
    store: Store,
    vault: SecretVault,
    plots: bool = True,
) -> DatasetProfile:
    """Profile a dataset and store the profile JSON (and plots) as artifacts under the home.

    Both are written masked with the store's masker and readable by the person only (0600).
    """
    path = resolve_dataset(dataset, settings, store, vault)
    profile_id = new_id("prof")
    directory = private_dir(settings.home / "profiles" / profile_id)
    masker = store.masker
    result = profile(path, target, plots_dir=directory if plots else None, masker=masker)
    result.profile_id = profile_id
    for plot in result.plots:
        _record(store, Path(plot.path), "plot", plot.media_type)
    result.artifact_id = new_id("art")
    json_path = write_text(directory / "profile.json", result.model_dump_json(indent=1), masker)
    data = json_path.read_bytes()
    store.add_artifact(
        ArtifactRecord(
            id=result.artifact_id,
            kind="profile",
            path=str(json_path),
            media_type="application/json",
            bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
    )
    return result


def shortened(result: DatasetProfile, limit: int = MAX_LISTED_COLUMNS) -> DatasetProfile:
    """The profile with at most ``limit`` columns listed (warned and target columns first)."""
    if len(result.columns) <= limit:
        return result
    flagged = {w.column for w in result.warnings if w.column}
    if result.target:
        flagged.add(result.target.column)
    ordered = sorted(result.columns, key=lambda c: c.name not in flagged)
    keep = {c.name for c in ordered[:limit]}
    return result.model_copy(
        update={
            "columns": [c for c in result.columns if c.name in keep],
            "columns_omitted": len(result.columns) - len(keep),
        }
    )


def stored_profile(settings: Settings, profile_id: str) -> str:
    """The JSON of a profile stored by profile_dataset."""
    if not PROFILE_ID.match(profile_id):
        raise InvalidInput(
            f"'{profile_id}' is not a profile id.",
            next_step="Use the profile_id returned by profile_dataset (prof_ and 12 hex digits).",
        )
    path = settings.home / "profiles" / profile_id / "profile.json"
    if not path.is_file():
        raise NotFound(f"No stored profile '{profile_id}'.", next_step="Run profile_dataset again.")
    return path.read_text(encoding="utf-8")

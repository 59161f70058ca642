"""What came back from a run elsewhere, taken in as a local job's results are.

An engine run's model folder moves to ``$MLTRAINER_HOME/models/<model_id>/`` and is recorded
exactly like a local model: a ``ModelRecord`` with the model file's sha256, and an artifact
per file of the kinds a local job records, so ``predict``, the model resources and
``deploy_model`` work the same. Before that, the folder is checked as anything that arrives
from outside: the model id is the one the job sent, the file's bytes have the hash the run
reported, every type it names is on the allow-list, and text files are masked.

A script run's outputs stay in the job's folder and become the job's artifacts.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path, PurePosixPath

from mltrainer.state.errors import RemoteServiceError, UntrustedModel
from mltrainer.state.files import private_dir
from mltrainer.state.masking import Masker
from mltrainer.state.models import ArtifactRecord
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store, new_id
from mltrainer.tools.runtimes.engine_entry import (
    CONFIG_FILE,
    MODEL_DIR,
    OUTCOME_FILE,
    EngineOutcome,
    EngineRun,
)
from mltrainer.tools.runtimes.files import mask_text_files
from mltrainer.tools.training.artifacts import MEDIA_TYPES
from mltrainer.tools.training.model import (
    META_FILE,
    MODEL_FILE,
    ModelMeta,
    model_record,
    verified_bytes,
)
from mltrainer.tools.training.outcome import TrainOutcome
from mltrainer.tools.training.trusted import checked_types

MODEL_ID_RE = re.compile(r"^model_[0-9a-f]{12}$")
# The artifact kinds a local job records, by file name (tools/training/artifacts.py).
KINDS = {
    MODEL_FILE: "model",
    "metrics.json": "metrics",
    "leaderboard.json": "leaderboard",
    "plan.json": "plan",
    "manifest.json": "manifest",
    "README.md": "card",
    "predict.py": "predict_script",
}


def adopt_model(
    fetched: Path, run_dir: Path, settings: Settings, store: Store, job_id: str
) -> TrainOutcome:
    """Register the model an engine run sent back; the job's result, with local paths."""
    expected = EngineRun.model_validate_json((run_dir / CONFIG_FILE).read_text("utf-8"))
    try:
        sent = EngineOutcome.model_validate_json((fetched / OUTCOME_FILE).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise RemoteServiceError(
            f"The run finished without a readable {OUTCOME_FILE}: {exc}",
            next_step="Read the job's log for what the run printed last, and start it again.",
        ) from exc
    outcome = TrainOutcome.model_validate(sent.outcome)
    model_id = expected.model_id
    if outcome.model_id != model_id or not MODEL_ID_RE.fullmatch(model_id):
        raise UntrustedModel(
            f"The run sent back model {outcome.model_id!r}, not the {model_id!r} it was given.",
            next_step="Nothing was registered; start the job again.",
        )
    source, folder = fetched / MODEL_DIR, settings.models_dir / model_id
    if not source.exists() and (folder / MODEL_FILE).is_file():
        source = folder  # moved there by an attempt that died before recording it
    _check_folder(source)
    data = verified_bytes(source / MODEL_FILE, sent.model_sha256)  # the file that was written
    checked_types(f"the model sent back by job {job_id}", data=data)
    meta = ModelMeta.model_validate_json((source / META_FILE).read_text("utf-8"))
    mask_text_files(source, store.masker)
    if source != folder:
        private_dir(folder.parent)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.move(str(source), str(folder))
    mine = meta.model_copy(update={"model_id": model_id})  # the id it was given, not its say
    store.save_model(model_record(mine, job_id, folder, sent.model_sha256))
    for path in sorted(folder.iterdir()):
        kind = "plot" if path.suffix == ".png" else KINDS.get(path.name)
        if kind is not None:
            sha = sent.model_sha256 if path.name == MODEL_FILE else None
            add_artifact(store, job_id, path, kind, model_id=model_id, sha256=sha)
    artifacts = {
        name: str(folder / PurePosixPath(rel).name) for name, rel in outcome.artifacts.items()
    }
    return outcome.model_copy(update={"artifacts": artifacts})


def _check_folder(folder: Path) -> None:
    """Only plain files and folders: nothing that points elsewhere on this machine."""
    if not folder.is_dir() or folder.is_symlink():
        raise RemoteServiceError(f"The run sent back no {MODEL_DIR}/ folder.")
    for path in folder.rglob("*"):
        if path.is_symlink():
            raise UntrustedModel(f"The run sent back a link ({path.name}); nothing was registered.")


def adopt_outputs(
    fetched: Path, outputs: list[str], store: Store, masker: Masker, job_id: str
) -> dict[str, str]:
    """Mask and record what a script run sent back (only the outputs asked for, when any
    were named); output name -> local path."""
    for path in fetched.rglob("*"):
        if path.is_symlink():
            path.unlink()
    mask_text_files(fetched, masker)
    wanted = [fetched / name for name in outputs] if outputs else [fetched]
    files = sorted(
        {
            p
            for root in wanted
            for p in ([root] if root.is_file() else root.rglob("*"))
            if p.is_file()
        }
    )
    found = {}
    for path in files:
        name = path.relative_to(fetched).as_posix()
        add_artifact(store, job_id, path, "output")
        found[name] = str(path)
    return found


def add_artifact(
    store: Store,
    job_id: str,
    path: Path,
    kind: str,
    *,
    model_id: str | None = None,
    sha256: str | None = None,
) -> None:
    store.add_artifact(
        ArtifactRecord(
            id=new_id("art"),
            job_id=job_id,
            model_id=model_id,
            kind=kind,
            path=str(path),
            media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
            bytes=path.stat().st_size,
            sha256=sha256,
        )
    )

"""From the engine's result to a saved, reported model: the one way a training ends, on this
machine (tools/jobs/train.py) and on a remote runtime (tools/runtimes/engine_entry.py) alike.

``final_model`` says what the final model is, ``meta_for`` what its meta.json records,
``write_report`` leaves every file beside it (metrics, plots, manifest, predict.py, the held-out
rows analyze_model reads, and the model card deployment publishes), and ``outcome_update`` is
what the job's result gains. Keeping them in one place keeps a remote job's result, folder and
card the same as a local one's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrainer.state.files import write_text
from mltrainer.state.masking import Masker
from mltrainer.tools.training.artifacts import ArtifactFile, DataSummary, write_artifacts
from mltrainer.tools.training.inputs import InputProfile
from mltrainer.tools.training.model import ModelMeta, SavedModel
from mltrainer.tools.training.progress import PublishedModel
from mltrainer.tools.training.request import TrainRequest
from mltrainer.tools.training.results import AutoMLResult

if TYPE_CHECKING:
    import pandas as pd

CARD_FILE = "README.md"


def final_model(result: AutoMLResult) -> PublishedModel:
    """The final model as the engine publishes it: scored on the held-out rows."""
    return PublishedModel(
        name=result.model_name,
        task=result.task,
        metric=result.metric,
        score=result.score,
        score_source="holdout",
        refit=result.refit,
        threshold=result.threshold,
        features=result.features,
        classes=result.classes,
        positive_class=result.positive_class,
    )


def meta_for(
    model: PublishedModel,
    *,
    model_id: str,
    job_id: str,
    target: str | None,
    inputs: InputProfile | None,
) -> ModelMeta:
    """What meta.json records of a published model; ``inputs`` is cut to its features."""
    if inputs is not None:
        wanted = set(model.features)
        inputs = inputs.model_copy(
            update={"features": [f for f in inputs.features if f.name in wanted]}
        )
    return ModelMeta(
        model_id=model_id,
        job_id=job_id,
        task=model.task,
        target=target,
        features=model.features,
        classes=model.classes or None,
        positive_class=model.positive_class,
        metric=model.metric,
        score=model.score,
        score_source=model.score_source,
        refit=model.refit,
        threshold=model.threshold,
        inputs=inputs,
        name=model.name,
    )


def write_report(
    folder: Path,
    result: AutoMLResult,
    saved: SavedModel,
    request: TrainRequest,
    data: DataSummary,
    frame: pd.DataFrame,
    *,
    job_id: str,
    masker: Masker,
) -> list[ArtifactFile]:
    """Every file of the final model's folder beside the model itself; what was written.

    The held-out rows (``frame`` is the table trained on: their row numbers point into it) let
    analyze_model work without the data; the card is the one deploy_model uploads, built from
    the folder's own files, so it is written last.
    """
    from mltrainer.tools.analysis.holdout import write_holdout
    from mltrainer.tools.deploy.card import build_card

    files = write_artifacts(folder, result, saved, request, data, job_id=job_id, masker=masker)
    rows = write_holdout(folder, result, frame, masker)
    if rows is not None:
        files.append(ArtifactFile(name=rows.name, kind="holdout", path=rows))
    card = write_text(folder / CARD_FILE, str(build_card(folder)), masker)
    files.append(ArtifactFile(name=CARD_FILE, kind="card", path=card))
    return files


def outcome_update(
    result: AutoMLResult, files: list[ArtifactFile], warnings: list[str]
) -> dict[str, Any]:
    """The fields a finished training sets in its TrainOutcome."""
    return {
        "score": result.score,
        "score_source": "holdout",
        "refit": result.refit,
        "selection": result.selection or None,
        "calibration": result.calibration,
        "threshold": result.threshold,
        "headline": result.warnings,
        "cv_mean": result.cv_mean,
        "cv_std": result.cv_std,
        "holdout": result.holdout,
        "leaderboard": result.leaderboard,
        "feature_importance": result.feature_importance[:20],
        "importance": result.importance[:20],
        "dropped_columns": result.dropped_columns,
        "decisions": result.decisions,
        "warnings": warnings,
        "artifacts": {file.name: str(file.path) for file in files},
        "search_stopped": result.search_stopped or None,
    }

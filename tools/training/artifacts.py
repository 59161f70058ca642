"""The files a finished training leaves beside its final model, none of them raw.

metrics, leaderboard, plan and run manifest (JSON), the evaluation plots (PNG) and the
standalone predict.py (finish.py adds the held-out rows and the model card). Text goes through ``state.files.write_text`` (masked,
readable by its owner only, written whole or not at all) and plots through ``render_png`` (every
text on them masked), so no secret that reached the data lands on disk as it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mltrainer.state.files import write_bytes, write_text
from mltrainer.state.masking import Masker
from mltrainer.tools.training.model import SavedModel
from mltrainer.tools.training.plan import TrainingPlan
from mltrainer.tools.training.plots import plots_for_result
from mltrainer.tools.training.request import TrainRequest
from mltrainer.tools.training.results import AutoMLResult
from mltrainer.tools.training.standalone import predict_script

MEDIA_TYPES = {
    ".png": "image/png",
    ".json": "application/json",
    ".md": "text/markdown",
    ".py": "text/x-python",
    ".skops": "application/octet-stream",
}


class DataSummary(BaseModel):
    """The training file as the job loaded it."""

    path: str
    ref: str | None = Field(default=None, description="The reference the caller gave for it.")
    rows: int
    columns: list[str]
    sha256: str
    sampled_from: int | None = Field(
        default=None,
        description="The table's rows (estimated for CSV) when only a sample of ``rows`` was "
        "loaded because all of them would not fit in memory.",
    )


class RunManifest(BaseModel):
    """Everything needed to reproduce the run: data hash, request, plan, seed, versions."""

    job_id: str
    model_id: str
    request: TrainRequest
    instructions: str | None
    data: DataSummary
    seed: int
    search_stopped: str = Field(description="Converged searches are reproducible; see README.")
    reproducible: bool
    plan: TrainingPlan
    library_versions: dict[str, str]
    code_version: str | None


class ArtifactFile(BaseModel):
    name: str
    kind: str = Field(description="The artifact kind: metrics, leaderboard, plot, card, ...")
    path: Path

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES.get(self.path.suffix, "application/octet-stream")


def write_artifacts(
    folder: Path,
    result: AutoMLResult,
    saved: SavedModel,
    request: TrainRequest,
    data: DataSummary,
    *,
    job_id: str,
    masker: Masker,
) -> list[ArtifactFile]:
    """Write every artifact of the final model into its ``folder``; what was written."""
    meta = saved.meta
    written: list[ArtifactFile] = []

    def put_text(name: str, kind: str, text: str) -> None:
        written.append(
            ArtifactFile(name=name, kind=kind, path=write_text(folder / name, text, masker))
        )

    def put_json(name: str, kind: str, value: Any) -> None:
        put_text(name, kind, json.dumps(value, indent=2))

    metrics = result.model_dump(mode="json", include={"task", "metric", "cv_mean", "cv_std"})
    put_json("metrics.json", "metrics", {**metrics, "holdout": result.holdout})
    put_json(
        "leaderboard.json",
        "leaderboard",
        [entry.model_dump(mode="json") for entry in result.leaderboard],
    )
    put_text("plan.json", "plan", result.plan.model_dump_json(indent=2))
    manifest = RunManifest(
        job_id=job_id,
        model_id=meta.model_id,
        request=request,
        instructions=request.instructions,
        data=data,
        seed=result.seed,
        search_stopped=result.search_stopped,
        reproducible=result.search_stopped == "converged",
        plan=result.plan,
        library_versions={**result.library_versions, **meta.library_versions},
        code_version=meta.library_versions.get("mltrainer-mcp"),
    )
    put_text("manifest.json", "manifest", manifest.model_dump_json(indent=2))
    for name, png in plots_for_result(result, masker).items():
        written.append(ArtifactFile(name=name, kind="plot", path=write_bytes(folder / name, png)))
    put_text("predict.py", "predict_script", predict_script(saved.file_sha256))
    return written

"""Predicting with a saved model on a dataset; the predictions are written to a CSV file.

The model file is verified before it is loaded (model.load_record), and the CSV is written
masked and readable by its owner only.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from mltrainer.state.errors import JobStateError, NotFound
from mltrainer.state.files import private_dir, write_text
from mltrainer.state.models import ArtifactRecord, utcnow
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store, new_id
from mltrainer.tools.training.inputs import PredictionWarning
from mltrainer.tools.training.model import load_record
from mltrainer.tools.training.outcome import TrainOutcome
from mltrainer.tools.training.prepare import resolve_dataset

PREVIEW_ROWS = 5


class PredictResult(BaseModel):
    model_id: str
    predictions_path: str = Field(description="CSV: one row per input row, in order.")
    n_rows: int
    columns: list[str] = Field(description="'prediction', then 'proba_<class>' per class.")
    preview: list[dict[str, Any]] = Field(description=f"The first {PREVIEW_ROWS} rows.")
    output_table: str | None = Field(
        default=None, description="The new database table the predictions were also written to."
    )
    threshold: float | None = Field(
        default=None,
        description="The decision threshold on the positive class's probability used for "
        "'prediction' (the model's own unless one was passed); None: the most likely class.",
    )
    warnings: list[PredictionWarning] = Field(
        default_factory=list,
        description="Where these rows differ from the training rows (most features missing, "
        "values far out of range, unseen categories, changed types, forecast dates inside the "
        "history), with counts and example row numbers (0-based positions in the file).",
    )


def model_id_for(reference: str, store: Store) -> str:
    """Accept a model_id, or a job_id whose (best so far) model is meant."""
    if reference.startswith("job_"):
        job = store.get_job(reference)
        model_id = None
        if job.kind == "train" and job.result:
            model_id = TrainOutcome.model_validate(job.result).model_id
        if not model_id:
            raise JobStateError(
                f"Job {reference} has no model yet (status: {job.status}).",
                next_step="Wait with job_status until model_id is set, then predict.",
            )
        return model_id
    return reference


def predict(
    reference: str,
    dataset: str,
    settings: Settings,
    store: Store,
    vault: SecretVault,
    output: str | None = None,
    threshold: float | None = None,
) -> PredictResult:
    """Predictions for every row of ``dataset``; ``threshold`` overrides a two-class model's
    decision threshold on its positive class's probability."""
    from mltrainer.tools.profiling import read_table

    model_id = model_id_for(reference, store)
    model = load_record(store.get_model(model_id), store)
    path = resolve_dataset(dataset, settings, store, vault)
    frame = read_table(path)
    if frame.empty:
        raise NotFound(f"{path} has no rows to predict.", next_step="Pass a file with data rows.")
    out = model.predict_frame(frame, threshold)
    warnings = model.check_frame(frame)
    if output is not None:  # first: a refused table leaves nothing behind
        from mltrainer.tools.datasets.sql_source import write_table

        write_table(output, out, settings=settings, vault=vault)
    folder = private_dir(settings.home / "predictions")
    stamp = utcnow().strftime("%Y%m%dT%H%M%S")
    target = folder / f"{model_id}-{stamp}-{new_id('p')[-6:]}.csv"
    write_text(target, out.to_csv(index=False), store.masker)
    store.add_artifact(
        ArtifactRecord(
            id=new_id("art"),
            model_id=model_id,
            kind="predictions",
            path=str(target),
            media_type="text/csv",
            bytes=target.stat().st_size,
        )
    )
    preview = out.head(PREVIEW_ROWS).to_dict(orient="records")
    return PredictResult(
        model_id=model_id,
        predictions_path=str(target),
        n_rows=len(out),
        columns=list(out.columns),
        preview=[{str(k): _plain(v) for k, v in row.items()} for row in preview],
        output_table=output,
        threshold=threshold if threshold is not None else model.meta.threshold,
        warnings=warnings,
    )


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value

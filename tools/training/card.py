"""The model card of a saved model: the one written at training time, or a short one."""

from __future__ import annotations

from pathlib import Path

from mltrainer.state.models import ModelRecord

CARD_FILE = "README.md"


def card_for(model: ModelRecord) -> str:
    written = Path(model.path) / CARD_FILE
    if written.is_file():
        return written.read_text()
    score = f"{model.score:.4f}" if model.score is not None else "n/a"
    return (
        f"---\nlibrary_name: sklearn\ntags:\n- tabular-{model.task}\n- mltrainer\n---\n\n"
        f"# {model.id}\n\nA {model.task} model predicting `{model.target}` "
        f"from {len(model.features)} columns, trained by mltrainer (job {model.job_id}).\n\n"
        f"Validation {model.metric}: {score}\n"
    )

"""Error analysis: where a trained model fails and why, and what to change next.

``analyze`` reads labelled rows with the model's predictions -- the job's held-out rows
(``holdout.parquet`` beside the model, ``read_holdout``) or a labelled dataset
(``dataset_rows``) -- and returns a typed ``ModelAnalysis``: slices where errors concentrate
(with a significance check), per-task details, plots and suggestions; ``next_request`` turns the
actionable suggestions into the next training request. This package imports nothing from
``tools.training``, so training can call it.
"""

from mltrainer.tools.analysis.facts import ModelFacts, model_facts
from mltrainer.tools.analysis.holdout import (
    HOLDOUT_FILE,
    read_holdout,
    write_holdout,
    write_holdout_rows,
)
from mltrainer.tools.analysis.iterate import NextRound, next_request
from mltrainer.tools.analysis.models import ModelAnalysis, Suggestion
from mltrainer.tools.analysis.rows import EvaluatedRows, check_analysable, dataset_rows
from mltrainer.tools.analysis.service import analyze

__all__ = [
    "HOLDOUT_FILE",
    "EvaluatedRows",
    "ModelAnalysis",
    "ModelFacts",
    "NextRound",
    "Suggestion",
    "analyze",
    "check_analysable",
    "dataset_rows",
    "model_facts",
    "next_request",
    "read_holdout",
    "write_holdout",
    "write_holdout_rows",
]

"""Error analysis: where a trained model fails and why, and what to change next.

``analyze`` reads labelled rows with the model's predictions -- the job's held-out rows
(``holdout.parquet`` beside the model, ``read_holdout``) or a labelled dataset
(``dataset_rows``) -- and returns a typed ``ModelAnalysis``: slices where errors concentrate
(with a significance check), per-task details, plots and suggestions; ``next_request`` turns the
actionable suggestions into the next training request. This package imports nothing from
``tools.training``, so training can call it.
"""

import importlib
from typing import Any

# The public names and the module each lives in: imported on first use, so that a server that
# only lists its tools does not load pandas and numpy.
_EXPORTS = {
    "ModelFacts": "facts",
    "model_facts": "facts",
    "HOLDOUT_FILE": "holdout",
    "read_holdout": "holdout",
    "write_holdout": "holdout",
    "write_holdout_rows": "holdout",
    "NextRound": "iterate",
    "next_request": "iterate",
    "ModelAnalysis": "models",
    "Suggestion": "models",
    "EvaluatedRows": "rows",
    "check_analysable": "rows",
    "dataset_rows": "rows",
    "analyze": "service",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)

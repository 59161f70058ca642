"""Experiment tracking: each finished training job as an MLflow run (optional).

Off by default; on with ``MLTRAINER_MLFLOW_TRACKING_URI`` and the ``tracking`` extra
(``pip install 'mltrainer-mcp[tracking]'``). ``log_job`` is what a job calls after it succeeds;
it never raises for a tracking failure (``TrackingResult.job_warnings()``). This package imports
nothing from ``tools.training``, which calls it.
"""

from mltrainer.tools.tracking.mlflow_run import TrackingResult, log_job
from mltrainer.tools.tracking.record import RunContent, experiment_for, run_content

__all__ = ["RunContent", "TrackingResult", "experiment_for", "log_job", "run_content"]

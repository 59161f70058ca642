"""The AutoML entry point: plan, baseline, search, ensemble, honest holdout, refit.

``fit_automl`` is what the job runner and the benchmark call. It reports through a
:class:`~mltrainer.tools.training.progress.Reporter`, publishes a baseline within seconds and every later
model that beats it, respects the time budget, and returns an :class:`AutoMLResult`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from mltrainer.tools.training.plan import TrainingPlan
from mltrainer.tools.training.planner import build_plan
from mltrainer.tools.training.progress import Reporter
from mltrainer.tools.training.request import TrainRequest
from mltrainer.tools.training.results import AutoMLResult

if TYPE_CHECKING:
    import pandas as pd

    from mltrainer.tools.profiling.judge import Verdict


def _load_native_libraries(plan: TrainingPlan) -> None:
    """Import what the plan will use, now: threadpoolctl only limits the OpenMP/BLAS libraries
    already loaded. Nothing else is imported: XGBoost alone costs ~25 MB of memory."""
    import sklearn.ensemble  # noqa: F401  (libgomp)

    if any(f.name == "xgboost" for f in plan.families):
        import xgboost  # noqa: F401
    from mltrainer.tools.machine import tune_allocator

    tune_allocator()


def fit_automl(
    frame: pd.DataFrame,
    request: TrainRequest,
    reporter: Reporter,
    *,
    verdict: Verdict | None = None,
    clock_start: float | None = None,
) -> AutoMLResult:
    """Train the best model the time budget allows for ``request`` on ``frame``.

    ``verdict`` is the judge's verdict on the columns (the job's profile stage); without it the
    frame is judged here, the same way. ``clock_start`` (``time.monotonic()`` scale) is when the
    budget began: a job passes the moment of the call less a reserve for what follows the fit,
    so that loading, profiling and saving are inside the budget (#17); without it the budget
    starts here, library loading excluded.
    """
    start = time.monotonic() if clock_start is None else clock_start
    restored = reporter.restore("plan")
    plan = (
        TrainingPlan.model_validate(restored["plan"])
        if restored
        else build_plan(frame, request, verdict)
    )
    loading = time.monotonic()
    _load_native_libraries(plan)
    if clock_start is None:  # loading, not training: this budget does not count it
        start += time.monotonic() - loading
    if restored:
        plan.decide("resume", "plan restored", "a checkpoint of an earlier attempt exists")
    else:
        if plan.parallel > 1 and plan.task in ("clustering", "forecast"):
            plan.decide(
                "search",
                "one trial at a time",
                f"parallel={plan.parallel} fans out the tabular search only, not {plan.task}",
            )
        reporter.checkpoint("plan", {"plan": plan.model_dump(mode="json")})
    reporter.event(
        f"Plan: {plan.task}, metric {plan.metric}, {len(plan.columns)} features, "
        f"families {', '.join(f.name for f in plan.families)}",
        progress=0.02,
    )
    from threadpoolctl import threadpool_limits

    # One thread per model; the engine runs folds and models side by side on the cores instead
    # (multi-threaded OpenMP models degrade badly when the cores are shared).
    with threadpool_limits(limits=1):
        if plan.task == "clustering":
            from mltrainer.tools.training.engine.clustering import fit_clustering

            return fit_clustering(frame, plan, reporter, start)
        if plan.task == "forecast":
            from mltrainer.tools.training.engine.forecast import fit_forecast

            return fit_forecast(frame, plan, reporter, start)
        from mltrainer.tools.training.engine.tabular import fit_tabular

        return fit_tabular(frame, plan, reporter, start)

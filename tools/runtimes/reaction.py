"""How the planner reacts, once, to a remote training run that failed.

Out of memory: the search trains on a row sample that fits half the run's memory
(``max_memory_mb``) and only the lighter families. A timeout: half the time budget, within
the same timeout, so the final refit and the report have room. Anything else (a bug, bad
data) is not something a second run would fix: the job fails with the log's end. The
decision is recorded with the error that caused it.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from mltrainer.tools.training.plan import Decision
from mltrainer.tools.training.request import TrainRequest

OUT_OF_MEMORY = re.compile(
    r"memoryerror|out of memory|\boom(killed)?\b|signal 9|sigkill|exit(ed)? (with )?code (137|-9)",
    re.IGNORECASE,
)
TIMED_OUT = re.compile(r"timed? ?out|timeout|deadline exceeded", re.IGNORECASE)
LIGHT_FAMILIES = ("hist_gradient_boosting", "linear")
MIN_BUDGET_S = 5


class Reaction(BaseModel):
    cause: str  # 'out of memory' | 'timeout'
    error: str
    decision: Decision
    request: TrainRequest


def react(request: TrainRequest, error: str, memory_gb: float | None) -> Reaction | None:
    """The changed request for one more run, or None when a second run would fail the same."""
    line = _first_line(error)
    if OUT_OF_MEMORY.search(error):
        budget_mb = int((memory_gb or 4.0) * 1024 / 2)
        if request.max_memory_mb is not None:
            budget_mb = min(budget_mb, request.max_memory_mb // 2)
        families = [f for f in (request.models or LIGHT_FAMILIES) if f in LIGHT_FAMILIES]
        changed = request.model_copy(
            update={
                "max_memory_mb": max(256, budget_mb),
                "models": families or ["linear"],
            }
        )
        what = (
            f"run again on a row sample that fits {changed.max_memory_mb} MB, with only "
            f"{', '.join(changed.models or [])}"
        )
        return _reaction("out of memory", line, what, changed)
    if TIMED_OUT.search(error):
        budget = max(MIN_BUDGET_S, request.time_budget_s // 2)
        if budget == request.time_budget_s:
            return None
        changed = request.model_copy(update={"time_budget_s": budget})
        what = f"run again with half the time budget ({budget} s) in the same timeout"
        return _reaction("timeout", line, what, changed)
    return None


def _reaction(cause: str, line: str, what: str, request: TrainRequest) -> Reaction:
    decision = Decision(
        stage="runtime", decision=what, reason=f"the remote run failed ({cause}): {line}"
    )
    return Reaction(cause=cause, error=line, decision=decision, request=request)


def _first_line(error: str) -> str:
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    relevant = [line for line in lines if OUT_OF_MEMORY.search(line) or TIMED_OUT.search(line)]
    return (relevant or lines or ["(no message)"])[-1][:300]

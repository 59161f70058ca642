"""The fan-out tests' helpers: a small Problem, and a task that dies as the OOM killer kills.

A worker process is spawned, so what it runs must be importable by name (``tests`` is on the
path the workers inherit)."""

from __future__ import annotations

import os
import signal

from mltrainer.tools.training.engine.fanout import Outcome, Trial, work
from mltrainer.tools.training.engine.search import Problem
from mltrainer.tools.training.engine.tabular_data import TabularData
from mltrainer.tools.training.planner import build_plan
from mltrainer.tools.training.request import TrainRequest
from tests.engine_fixtures import mixed_classification


def killed_on_knn(trial: Trial, deadline: float) -> Outcome:
    """``work``, except that a knn trial's process is killed (SIGKILL, no clean-up), as the
    OOM killer kills the biggest process."""
    if trial.family == "knn":
        os.kill(os.getpid(), signal.SIGKILL)
    return work(trial, deadline)


def request(**fields: object) -> TrainRequest:
    return TrainRequest.model_validate({"dataset": "test", "time_budget_s": 6, **fields})


def problem_of(rows: int = 300, models: tuple[str, ...] = ("linear", "knn")) -> Problem:
    frame = mixed_classification(rows=rows)
    plan = build_plan(frame, request(target="label", models=list(models)))
    data = TabularData(frame, plan)
    return data.problem(data.train)

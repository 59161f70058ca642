"""What a fan-out test's worker processes import: a task that dies as the OOM killer kills.

A worker process is spawned, so what it runs must be importable by name (``tests`` is on the
path the workers inherit)."""

from __future__ import annotations

import os
import signal

from mltrainer.tools.training.engine.fanout import Outcome, Trial, work


def killed_on_knn(trial: Trial, deadline: float) -> Outcome:
    """``work``, except that a knn trial's process is killed (SIGKILL, no clean-up), as the
    OOM killer kills the biggest process."""
    if trial.family == "knn":
        os.kill(os.getpid(), signal.SIGKILL)
    return work(trial, deadline)

"""The time budget is a promise from the call (#17): the engine's clock starts when the job was
created, less what the stages after the fit need, so loading and profiling are inside it."""

from __future__ import annotations

import time
from datetime import timedelta

from mltrainer.state.models import JobRecord, utcnow
from mltrainer.tools.jobs.train import AFTER_FIT_ROW_S, AFTER_FIT_S, budget_clock


def test_budget_counts_the_seconds_before_the_fit_and_after_it() -> None:
    job = JobRecord(id="job_x", kind="train", attempt=1, created_at=utcnow() - timedelta(seconds=4))
    clock = budget_clock(job, 60, rows=10_000)
    assert clock is not None
    charged = time.monotonic() - clock
    # 4 s since the call and the reserve for saving; the clock only moves on, so never less.
    assert charged >= 4 + AFTER_FIT_S + 10_000 * AFTER_FIT_ROW_S


def test_budget_charges_at_most_half_of_it_so_the_search_keeps_the_rest() -> None:
    job = JobRecord(id="job_x", kind="train", attempt=1, created_at=utcnow() - timedelta(hours=1))
    clock = budget_clock(job, 60, rows=100)
    assert clock is not None
    assert 30 <= time.monotonic() - clock < 30 + 60  # generous: the machine may be loaded


def test_resumed_attempt_starts_its_budget_afresh() -> None:
    job = JobRecord(id="job_x", kind="train", attempt=2, created_at=utcnow() - timedelta(hours=1))
    assert budget_clock(job, 60, rows=100) is None

"""What a job's code sees while it runs in a worker: stages, events, checkpoints, cancellation.

``JobContext`` implements the training ``Reporter`` protocol on top of the store.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mltrainer.state.models import EVENT_LEVELS, EventLevel, JobRecord, StageRecord
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.training.progress import PublishedModel

CHECKPOINT_PREFIX = "checkpoint:"


class JobCancelled(Exception):
    """Raised inside a job when it was asked to stop."""


class JobContext:
    def __init__(
        self, store: Store, job: JobRecord, settings: Settings, vault: SecretVault
    ) -> None:
        self.store = store
        self.job = job
        self.settings = settings
        self.vault = vault
        self.workdir: Path = settings.jobs_dir / job.id
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stage_name: str | None = None
        self._seq = 0
        self._cancel = threading.Event()
        self._progress = job.progress
        self._publish_hook: Callable[[Any, PublishedModel], None] | None = None
        # Stages that finished in an earlier attempt; a resumed job skips them.
        self._done = {s.name: s for s in store.stages(job.id) if s.status == "succeeded"}

    # -- Reporter protocol --------------------------------------------------------------
    def event(self, message: str, *, progress: float | None = None, level: str = "info") -> None:
        if progress is not None:
            self._progress = max(self._progress, min(progress, 1.0))
            self.store.update_job(self.job.id, progress=self._progress, message=message)
        known: EventLevel = level if level in EVENT_LEVELS else "info"  # type: ignore[assignment]
        self.store.add_event(
            self.job.id, message, level=known, stage=self.stage_name, progress=progress
        )

    def cancelled(self) -> bool:
        if not self._cancel.is_set() and self.store.get_job(self.job.id).cancel_requested:
            self._cancel.set()
        return self._cancel.is_set()

    def checkpoint(self, name: str, data: dict[str, Any]) -> None:
        key = CHECKPOINT_PREFIX + name
        seq = self._next_seq()
        self.store.start_stage(self.job.id, key, seq, self.job.attempt)
        self.store.finish_stage(self.job.id, key, "succeeded", result=data)
        self._done[key] = StageRecord(
            job_id=self.job.id,
            name=key,
            seq=seq,
            status="succeeded",
            attempt=self.job.attempt,
            result=data,
        )

    def restore(self, name: str) -> dict[str, Any] | None:
        stage = self._done.get(CHECKPOINT_PREFIX + name)
        return stage.result if stage else None

    def publish(self, estimator: Any, model: PublishedModel) -> None:
        if self._publish_hook is None:
            raise RuntimeError("This job kind does not publish models.")
        self._publish_hook(estimator, model)

    def on_publish(self, hook: Callable[[Any, PublishedModel], None]) -> None:
        self._publish_hook = hook

    # -- stages -------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def stage(self, name: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run one stage, or return its stored result if an earlier attempt finished it."""
        seq = self._next_seq()
        done = self._done.get(name)
        if done is not None:
            self.event(
                f"Stage '{name}' was finished by attempt {done.attempt}; reusing its result."
            )
            return done.result or {}
        if self.cancelled():
            raise JobCancelled
        self.stage_name = name
        self.store.start_stage(self.job.id, name, seq, self.job.attempt)
        self.event(f"Stage '{name}' started.")
        try:
            result = run()
        except JobCancelled:
            self.store.finish_stage(self.job.id, name, "failed", error="cancelled")
            raise
        except Exception as exc:
            self.store.finish_stage(
                self.job.id, name, "failed", error=f"{type(exc).__name__}: {exc}"
            )
            self.event(traceback.format_exc(limit=8), level="debug")
            raise
        self.store.finish_stage(self.job.id, name, "succeeded", result=result)
        self.event(f"Stage '{name}' finished.")
        self.stage_name = None
        return result

    def check_cancelled(self) -> None:
        if self.cancelled():
            raise JobCancelled

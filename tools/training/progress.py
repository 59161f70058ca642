"""How training reports its progress to whatever runs it (a job worker, a benchmark, a test).

Training code never touches the store, the jobs or the MCP layer: it tells its progress,
checkpoints and the models it publishes through the :class:`Reporter` protocol, which the job
runner implements (tools/jobs/context.py).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from mltrainer.tools.training.plan import ConcreteTask


class PublishedModel(BaseModel):
    """What the engine says of a model it publishes."""

    name: str = Field(description="The candidate's name, e.g. 'xgboost#3' or 'ensemble'.")
    task: ConcreteTask
    metric: str
    score: float | None = Field(description="Its validation score, or held-out (score_source).")
    score_source: Literal["validation", "holdout"] = Field(
        default="validation",
        description="'holdout': the held-out test score of this pipeline fitted on the training "
        "rows only (the final model); 'validation': a score from the folds, while searching.",
    )
    refit: bool = Field(default=False, description="Refitted on every row after its holdout.")
    threshold: float | None = Field(
        default=None, description="Its decision threshold on the positive class's probability."
    )
    features: list[str] = Field(description="The input columns predict needs, in order.")
    classes: list[str] = Field(default_factory=list)
    positive_class: str | None = None


class TrainingCancelled(Exception):
    """The run was cancelled before it had any model to return."""


class Reporter(Protocol):
    def event(self, message: str, *, progress: float | None = None, level: str = "info") -> None:
        """A progress or log line; ``progress`` is the job's overall fraction in [0, 1]."""

    def cancelled(self) -> bool:
        """True once the job was asked to stop: return promptly, keeping the best model so far."""

    def checkpoint(self, name: str, data: dict[str, Any]) -> None:
        """Persist a JSON-able intermediate result that a resumed job can pick up."""

    def restore(self, name: str) -> dict[str, Any] | None:
        """The data of an earlier ``checkpoint`` with this name, if any (after a crash)."""

    def publish(self, estimator: Any, model: PublishedModel) -> None:
        """A fitted model better than any published before: saved at once, usable by predict."""


class NullReporter:
    """For benchmarks and tests: prints nothing, never cancelled, remembers what it is told."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.published: list[tuple[Any, PublishedModel]] = []
        self._checkpoints: dict[str, dict[str, Any]] = {}

    def event(self, message: str, *, progress: float | None = None, level: str = "info") -> None:
        self.events.append(message)

    def cancelled(self) -> bool:
        return False

    def checkpoint(self, name: str, data: dict[str, Any]) -> None:
        self._checkpoints[name] = data

    def restore(self, name: str) -> dict[str, Any] | None:
        return self._checkpoints.get(name)

    def publish(self, estimator: Any, model: PublishedModel) -> None:
        self.published.append((estimator, model))

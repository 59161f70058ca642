"""Where the search's trials are evaluated: here, in worker processes, or in Modal containers.

The search (search.py) hands an :class:`Evaluator` a round of trials -- as many as its
``width`` -- and gets back one :class:`Outcome` per trial, in trial order: a Candidate, none
when the deadline cut it short, or the family's failure as data (the search records it as a
failure of that family, as it always has). The ensemble, calibration, holdout and refit stay
in the process that runs the search; only candidate fits fan out.

- :class:`InProcess` (width 1): today's engine, one trial at a time, its folds in threads.
- :class:`Processes` (``parallel=N`` on this machine, and in the fake Modal that stands for N
  containers): N worker processes, each given the Problem once when it starts and fitting one
  trial at a time, single-threaded with its folds in sequence, so N trials use N cores. A
  worker that dies (the OOM killer, a crash in native code) breaks the pool: its trial becomes
  a recorded failure and the pool is started again.
- :class:`ModalContainers` (``parallel=N`` on Modal, inside the job's container): the Problem
  is written once to the job's Volume and each trial runs in its own container of the job's
  app (modal_remote.run_trial), called with ``Function.map``.

A deadline crosses processes and machines as wall-clock epoch seconds; each side turns it back
into its own monotonic clock.
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mltrainer.tools.machine import CORES_ENV, tune_allocator
from mltrainer.tools.training.engine.trials import Candidate, Problem, evaluate

# Set by modal_remote.run_entry for the engine it runs in a Modal container.
FANOUT_ENV = "MLTRAINER_FANOUT"  # "modal": fan out to the job's Modal containers
APP_ENV = "MLTRAINER_FANOUT_APP"  # the deployed app that holds the trial function
VOLUME_ENV = "MLTRAINER_FANOUT_VOLUME"  # the job's Volume, where the Problem is written once
TRIAL_FUNCTION = "run_trial"
PROBLEM_FILE = "fanout/problem.pkl"  # on the job's Volume


@dataclass(frozen=True)
class Trial:
    """One configuration to cross-validate; ``keep_models``: keep its first fold's model."""

    family: str
    params: dict[str, Any]
    keep_models: bool


@dataclass
class Outcome:
    """What became of a trial: a candidate, nothing (the deadline cut it short), or the
    family's failure; ``seconds`` is its own evaluation time, wherever it ran."""

    candidate: Candidate | None = None
    error: str | None = None
    out_of_memory: bool = False
    seconds: float = 0.0


class Evaluator(Protocol):
    width: int
    where: str

    def evaluate(self, trials: list[Trial], deadline: float) -> list[Outcome]:
        """One outcome per trial, in their order; ``deadline`` is on time.monotonic()."""
        ...

    def close(self) -> None: ...


def run_trial(problem: Problem, trial: Trial, deadline: float) -> Outcome:
    """Cross-validate ``trial``; a failure of its family comes back as data."""
    start = time.monotonic()
    try:
        candidate = evaluate(
            problem, trial.family, trial.params, 0, deadline, keep_models=trial.keep_models
        )
    except MemoryError:
        return Outcome(out_of_memory=True, seconds=time.monotonic() - start)
    except Exception as error:  # a family's own failure: recorded, retried, then dropped
        return Outcome(error=f"{type(error).__name__}: {error}", seconds=time.monotonic() - start)
    return Outcome(candidate=candidate, seconds=time.monotonic() - start)


def wall_clock(deadline: float) -> float:
    """A monotonic deadline as epoch seconds, to send elsewhere."""
    return time.time() + (deadline - time.monotonic())


def monotonic(epoch: float) -> float:
    """Epoch seconds received from elsewhere, on this process's monotonic clock."""
    return time.monotonic() + (epoch - time.time())


class InProcess:
    """One trial at a time in this process, its folds in threads (the engine as it was)."""

    width = 1
    where = "this process"

    def __init__(self, problem: Problem) -> None:
        self.problem = problem

    def evaluate(self, trials: list[Trial], deadline: float) -> list[Outcome]:
        return [run_trial(self.problem, trial, deadline) for trial in trials]

    def close(self) -> None:
        return None


# -- worker processes -------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}  # in a worker process: its Problem and its thread limit


def _start_worker(problem: bytes) -> None:
    """A worker's initializer: one core, one thread per model, its Problem loaded once."""
    from threadpoolctl import threadpool_limits

    os.environ[CORES_ENV] = "1"  # folds in sequence, forests on one core
    tune_allocator()
    _WORKER["limits"] = threadpool_limits(limits=1)  # kept: the limit holds while it lives
    _WORKER["problem"] = pickle.loads(problem)


def work(trial: Trial, deadline: float) -> Outcome:
    """A worker's task: ``trial`` on the Problem it was started with, by ``deadline`` (epoch)."""
    return run_trial(_WORKER["problem"], trial, monotonic(deadline))


class Processes:
    """``width`` spawned worker processes, each evaluating one trial at a time.

    ``concurrent.futures.ProcessPoolExecutor`` with the "spawn" context: the same on Linux,
    macOS and Windows (no fork of a process holding threads and OpenMP state), owned by this
    search (loky's reusable executor is one per process, shared with scikit-learn's joblib),
    and a worker's death breaks the pool with ``BrokenProcessPool``, which is caught here.
    ``task`` is what a worker runs (a module-level function: tests inject a dying one).
    """

    where = "worker processes on this machine"

    def __init__(
        self,
        problem: Problem,
        width: int,
        task: Callable[[Trial, float], Outcome] = work,
    ) -> None:
        self.width = width
        self.task = task
        self._problem = pickle.dumps(problem, protocol=pickle.HIGHEST_PROTOCOL)
        self._pool: ProcessPoolExecutor | None = None
        self.restarts = 0
        self.broken = ""  # why the pool broke last

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing

            self._pool = ProcessPoolExecutor(
                max_workers=self.width,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self._problem,),
            )
        return self._pool

    def evaluate(self, trials: list[Trial], deadline: float) -> list[Outcome]:
        epoch = wall_clock(deadline)
        outcomes: dict[int, Outcome] = {}
        lost = self._run(trials, list(range(len(trials))), epoch, outcomes)
        if len(lost) > 1:  # which trial killed its worker is unknown: each again, alone
            lost = [i for i in lost if self._run(trials, [i], epoch, outcomes)]
        for i in lost:
            outcomes[i] = Outcome(
                error=f"WorkerDied: the process evaluating this trial stopped ({self.broken}); "
                "killed for memory, or a crash in native code"
            )
        return [outcomes[i] for i in range(len(trials))]

    def _run(
        self, trials: list[Trial], indices: list[int], epoch: float, outcomes: dict[int, Outcome]
    ) -> list[int]:
        """Evaluate ``indices`` of ``trials`` into ``outcomes``; those a worker's death lost."""
        pool = self._executor()
        futures: dict[int, Future[Outcome]] = {
            i: pool.submit(self.task, trials[i], epoch) for i in indices
        }
        lost = []
        for i, future in futures.items():
            try:
                outcomes[i] = future.result()
            except BrokenProcessPool as error:
                self.broken = str(error)
                lost.append(i)
        if lost:  # a broken pool takes no more work: start a new one
            self.close()
            self.restarts += 1
        return lost

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


# -- Modal containers -------------------------------------------------------------------------
class ModalContainers:
    """Each trial in its own container of the job's Modal app (``run_trial``), at most
    ``width`` at once (the function's ``max_containers``). The Problem is uploaded once to the
    job's Volume; each container reads it once and keeps it for the trials it serves."""

    where = "Modal containers"

    def __init__(self, problem: Problem, width: int, app_name: str, volume_name: str) -> None:
        import io

        import modal

        self.width = width
        self.app_name = app_name
        self.volume_name = volume_name
        blob = pickle.dumps(problem, protocol=pickle.HIGHEST_PROTOCOL)
        volume = modal.Volume.from_name(volume_name)
        with volume.batch_upload(force=True) as batch:
            batch.put_file(io.BytesIO(blob), PROBLEM_FILE)

    def evaluate(self, trials: list[Trial], deadline: float) -> list[Outcome]:
        import modal

        function = modal.Function.from_name(self.app_name, TRIAL_FUNCTION)
        epoch = wall_clock(deadline)
        n = len(trials)
        results = function.map([self.volume_name] * n, trials, [epoch] * n, return_exceptions=True)
        return [
            result
            if isinstance(result, Outcome)
            else Outcome(error=f"ContainerFailed: {type(result).__name__}: {result}")
            for result in results
        ]

    def close(self) -> None:
        return None


def trial_in_container(
    mount: Path, trial: Trial, deadline: float, reload: Callable[[], None]
) -> Outcome:
    """What the trial function runs in its container: ``trial`` on the Problem of the job's
    Volume at ``mount`` (read once per container, after ``reload`` shows the upload)."""
    problem = _WORKER.get("problem")
    if problem is None:
        reload()
        from threadpoolctl import threadpool_limits

        tune_allocator()
        _WORKER["limits"] = threadpool_limits(limits=1)  # folds in threads, one thread each
        problem = _WORKER["problem"] = pickle.loads((mount / PROBLEM_FILE).read_bytes())
    return run_trial(problem, trial, monotonic(deadline))


def evaluator_for(problem: Problem, width: int) -> Evaluator:
    """The evaluator of a search ``width`` trials wide: in this process for one; in the job's
    Modal containers when the engine runs in one (``MLTRAINER_FANOUT=modal``); else in worker
    processes of this machine."""
    if width <= 1:
        return InProcess(problem)
    if os.environ.get(FANOUT_ENV) == "modal":
        return ModalContainers(problem, width, os.environ[APP_ENV], os.environ[VOLUME_ENV])
    return Processes(problem, width)

"""The time-budgeted search over families: rounds of trials, as wide as its evaluator.

The search first tries each family's portfolio, then lets Optuna's TPE propose configurations,
giving more trials to the families that are doing best and skipping those whose next fit would
not finish in time. Each round picks as many trials as the evaluator (fanout.py) runs at once
-- one here, N on worker processes or Modal containers -- and records their results in trial
order, so a search of a given width gives the same candidates on every run with the same seed.
A candidate's evaluation itself lives in trials.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mltrainer.tools.machine import release_memory
from mltrainer.tools.training.engine import families as fam
from mltrainer.tools.training.engine.fanout import Evaluator, InProcess, Outcome, Trial
from mltrainer.tools.training.engine.trials import (
    BIG_MODELS,
    Candidate,
    CandidateSummary,
    Problem,
    evaluate,
    fit_pipeline,
)

# Re-exported: the rest of the engine (and its tests) import these from here.
__all__ = ["Candidate", "CandidateSummary", "Problem", "Search", "evaluate", "fit_pipeline"]
PATIENCE = 25  # trials without a better best score before the search stops
IMPROVEMENT = 1e-4  # what counts as a better best score


class Search:
    """The budgeted loop: portfolio first, then TPE, with time going to what works."""

    def __init__(
        self,
        problem: Problem,
        family_names: list[str],
        seed: int,
        on_candidate: Callable[[Candidate], None],
        on_event: Callable[[str], None],
        cancelled: Callable[[], bool],
        keep_top: int = 1,
        pool: int | None = None,
        patience: int = PATIENCE,
        evaluator: Evaluator | None = None,
    ) -> None:
        """``evaluator``: where trials run, and how many at once (default: here, one);
        ``pool``: how many of the best candidates keep their out-of-fold predictions (the
        ensemble's choice), default all."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.problem = problem
        self.families = list(family_names)
        self.seed = seed
        self.on_candidate = on_candidate
        self.on_event = on_event
        self.cancelled = cancelled
        self.keep_top = keep_top
        self.pool = pool
        self.patience = patience
        self.evaluator = evaluator or InProcess(problem)
        self.candidates: list[Candidate] = []
        self.failures: dict[str, list[str]] = {}
        self.dropped: dict[str, str] = {}
        self.costs: dict[str, list[float]] = {}
        self.studies: dict[str, Any] = {}
        for i, name in enumerate(self.families):
            options: dict[str, Any] = {"seed": seed + i, "n_startup_trials": 6}
            if self.evaluator.width > 1:  # trials asked before the round's results are told
                options["constant_liar"] = True  # (optuna's default, said for older versions)
            sampler = optuna.samplers.TPESampler(multivariate=True, **options)
            study = optuna.create_study(direction="maximize", sampler=sampler)
            for config in fam.portfolio(name, problem.ctx):
                study.enqueue_trial(config)
            self.studies[name] = study
        self.rng = np.random.default_rng(seed)

    @property
    def best(self) -> Candidate | None:
        return max(self.candidates, key=lambda c: c.utility, default=None)

    def ranked(self) -> list[Candidate]:
        """The candidates, best first; ties in the order they were found (the ensemble's pool
        and what ``_trim`` keeps are the head of this one order)."""
        return sorted(self.candidates, key=lambda c: c.utility, reverse=True)

    def _alive(self) -> list[str]:
        return [f for f in self.families if f not in self.dropped]

    def _expected_cost(self, family: str) -> float:
        costs = self.costs.get(family)
        if costs:
            return float(np.median(costs))
        known = [(f, float(np.median(c))) for f, c in self.costs.items() if c]
        if not known:
            return 0.0
        classes = self.problem.ctx.n_classes
        per_unit = float(np.median([cost / fam.relative_cost(f, classes) for f, cost in known]))
        return per_unit * fam.relative_cost(family, classes)

    def replay(self, configs: list[tuple[str, dict[str, Any]]], deadline: float) -> None:
        """Evaluate known configurations (a resumed job's ensemble) instead of searching."""
        width = self.evaluator.width
        try:
            for first in range(0, len(configs), width):
                if self.cancelled() or time.monotonic() > deadline:
                    return
                chosen = configs[first : first + width]
                self._round([_trial(f, p) for f, p in chosen], [None] * len(chosen), deadline)
        finally:
            self.evaluator.close()

    def _ask(self, families: list[str], deadline: float) -> None:
        """One round: a trial per family from its study, evaluated together."""
        asked = [self.studies[f].ask(fam.search_space(f, self.problem.ctx)) for f in families]
        trials = [_trial(f, t.params) for f, t in zip(families, asked, strict=True)]
        self._round(trials, asked, deadline)

    def _round(self, trials: list[Trial], asked: list[Any], deadline: float) -> None:
        """Evaluate ``trials`` and record them in their order (``asked``: the Optuna trials,
        None for replayed configurations), whatever order they finished in."""
        outcomes = self.evaluator.evaluate(trials, deadline)
        for trial, study_trial, outcome in zip(trials, asked, outcomes, strict=True):
            self._record(trial.family, study_trial, outcome)

    def _record(self, family: str, trial: Any, outcome: Outcome) -> None:
        study = self.studies[family]
        if outcome.out_of_memory:
            _tell(study, trial, None)
            if family not in self.dropped:
                self.dropped[family] = "ran out of memory"
                self.on_event(f"{family} dropped: ran out of memory")
            return
        if outcome.error is not None:  # a family's own failure: recorded, retried, then dropped
            self.failures.setdefault(family, []).append(outcome.error)
            _tell(study, trial, None)
            if len(self.failures[family]) >= 2 and family not in self.dropped:
                self.dropped[family] = f"failed twice: {self.failures[family][-1][:300]}"
                self.on_event(f"{family} dropped: {self.dropped[family]}")
            return
        self.costs.setdefault(family, []).append(outcome.seconds)
        candidate = outcome.candidate
        if candidate is None:
            _tell(study, trial, None)
            return
        candidate.id = len(self.candidates)  # numbered in trial order, wherever it ran
        _tell(study, trial, candidate.utility)
        self.candidates.append(candidate)
        self.on_candidate(candidate)
        self._trim()
        release_memory()

    def _trim(self) -> None:
        """Bound what the candidates hold. A fold model is kept only by the best candidate that
        has one (the fallback final model when there is no time to fit the chosen ones again).
        Out-of-fold predictions (rows x classes each) are kept by the best ``pool`` and by the
        one with a fold model: a candidate that many others beat can never be chosen, however
        the search goes on."""
        kept = 0
        ranked = self.ranked()
        for candidate in ranked:
            if candidate.models is None:
                continue
            if kept >= self.keep_top:
                candidate.models = None
            kept += 1
        beyond = ranked[self.pool :] if self.pool is not None else []
        for candidate in beyond:
            if candidate.models is None:
                candidate.oof = None

    def _pick(self, remaining: float, picked: list[str]) -> str | None:
        """The next family to try; ``picked``: those already in this round (not untried)."""
        alive = [f for f in self._alive() if self._expected_cost(f) <= remaining]
        if not alive:
            return None
        untried = [f for f in alive if f not in self.costs and f not in picked]
        if self.problem.ctx.target_transform and "linear" in untried:
            return "linear"  # its first candidate is the transformed one: cheap, tried for sure
        if untried:
            return untried[0]
        best_by_family = {
            f: max((c.utility for c in self.candidates if c.family == f), default=-np.inf)
            for f in alive
        }
        # Rank-based, seeded: the sequence of trials depends on scores only, never on timings,
        # so the same seed gives the same candidates (as many as the budget allows).
        ranked = sorted(
            alive, key=lambda f: (best_by_family[f], -self.families.index(f)), reverse=True
        )
        weights = np.array([0.5**i for i in range(len(ranked))])
        weights /= weights.sum()
        return str(self.rng.choice(ranked, p=weights))

    def converged(self) -> bool:
        """Every family has had its portfolio and the best score has not moved for ``patience``
        trials. Decided by scores alone, so a search that ends this way ends the same on every run
        with the same seed (one the clock ends depends on the machine's speed)."""
        tried = len(self.candidates) + sum(len(f) for f in self.failures.values())
        portfolios = sum(len(fam.portfolio(f, self.problem.ctx)) for f in self._alive())
        if tried < portfolios + self.patience:
            return False
        best, since = -np.inf, 0
        for candidate in self.candidates:
            if candidate.utility > best + IMPROVEMENT:
                best, since = candidate.utility, 0
            else:
                since += 1
        return since >= self.patience

    def run(self, deadline: Callable[[], float]) -> str:
        """Trials until the deadline or convergence: untried families first (in plan order), then
        the best. Returns why it stopped: "converged", "time", "cancelled" or "no family left".

        ``deadline`` is re-read after every round: it moves as the cost of the final refit of
        the best models becomes known. A round is as many trials as the evaluator's width.
        """
        try:
            while not self.cancelled():
                if self.converged():
                    return "converged"
                remaining = deadline() - time.monotonic()
                if remaining <= 0:
                    return "time"
                families: list[str] = []
                while len(families) < self.evaluator.width:
                    family = self._pick(remaining, families)
                    if family is None:
                        break
                    families.append(family)
                if not families:
                    return "time"
                self._ask(families, deadline())
                if not self._alive():
                    return "no family left"
            return "cancelled"
        finally:
            self.evaluator.close()


def _tell(study: Any, trial: Any, value: float | None) -> None:
    if trial is None:  # a replayed configuration: not part of the study
        return
    if value is None:
        study.tell(trial, state=_failed())
    else:
        study.tell(trial, value)


def _failed() -> Any:
    import optuna

    return optuna.trial.TrialState.FAIL


def _trial(family: str, params: dict[str, Any]) -> Trial:
    # Forests grow with the rows: their fold models are dropped once they have predicted.
    return Trial(family=family, params=dict(params), keep_models=family not in BIG_MODELS)

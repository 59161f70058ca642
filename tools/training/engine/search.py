"""Cross-validated evaluation of candidates and the time-budgeted search over families.

Each candidate is a (family, params) pair evaluated on the same folds, giving out-of-fold
predictions (for ensembling) and per-fold scores. The search first tries each family's
portfolio, then lets Optuna's TPE propose configurations, giving more trials to the families
that are doing best and skipping those whose next fit would not finish in time.

About 430 lines, kept together: the evaluation of one candidate and the loop that decides which
to evaluate next share the Problem, the Candidate and the deadline rules.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from mltrainer.tools.training.engine import families as fam
from mltrainer.tools.training.engine import fitting
from mltrainer.tools.training.engine.machine import n_workers, parallel_map, release_memory
from mltrainer.tools.training.engine.metrics import MetricContext, score, utility
from mltrainer.tools.training.engine.preprocess import build_preprocessor
from mltrainer.tools.training.plan import ColumnPlan
from mltrainer.tools.training.results import LeaderboardEntry

log = logging.getLogger(__name__)
# Families whose fitted models grow with the rows (forests): fold models never kept.
BIG_MODELS = ("random_forest", "extra_trees")
LABEL_METRICS = ("accuracy", "balanced_accuracy", "f1", "precision", "recall")
PATIENCE = 25  # trials without a better best score before the search stops
IMPROVEMENT = 1e-4  # what counts as a better best score


class CandidateSummary(LeaderboardEntry):
    """A candidate as checkpointed: enough to evaluate its configuration again."""

    facts: list[dict[str, Any]]


@dataclass
class Candidate:
    id: int
    family: str
    params: dict[str, Any]
    utility: float
    cv_mean: float
    cv_std: float
    fit_time_s: float
    oof: np.ndarray
    facts: list[dict[str, Any]]
    models: list[Any] | None = None

    @property
    def fold_seconds(self) -> float:
        """Mean time of one fold's fit and predict (single-threaded)."""
        return float(np.mean([f.get("seconds", 0.0) for f in self.facts])) if self.facts else 0.0

    def predict_seconds(self, n_rows: int) -> float:
        """Time for all fold models of this candidate to predict ``n_rows`` rows."""
        return float(sum(f.get("predict_row_s", 0.0) for f in self.facts)) * n_rows

    def entry(self, weight: float = 0.0) -> LeaderboardEntry:
        """Its line on the leaderboard, with its weight in the final model."""
        return LeaderboardEntry(
            name=f"{self.family}#{self.id}",
            family=self.family,
            params=self.params,
            cv_mean=self.cv_mean,
            cv_std=self.cv_std,
            fit_time_s=round(self.fit_time_s, 3),
            weight=weight,
        )

    def summary(self) -> CandidateSummary:
        return CandidateSummary(**self.entry().model_dump(), facts=self.facts)


class _OutOfTime(Exception):
    """The deadline passed before a fold could start."""


@dataclass
class Problem:
    """Everything a candidate is evaluated on: encoded target, folds, metric."""

    X: Any  # pandas DataFrame of the training rows
    y: np.ndarray
    weight: np.ndarray | None
    splits: list[tuple[np.ndarray, np.ndarray]]
    columns: list[ColumnPlan]
    ctx: fam.FitContext
    metric: str
    metric_ctx: MetricContext
    calendar: tuple[str, ...] = ()  # the time axis's calendar parts, when there is one
    ordered: bool = False  # rows (and every fold's training rows) are in time order
    mask: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.mask = np.zeros(len(self.y), dtype=bool)
        for _, valid in self.splits:
            self.mask[valid] = True

    def oof_utility(self, oof: np.ndarray, rows: np.ndarray | None = None) -> float:
        """The utility of out-of-fold predictions on ``rows`` (default: every validated row)."""
        rows = self.mask if rows is None else rows
        y, pred = self.y[rows], oof[rows]
        value = utility(self.metric, score(self.metric, y, pred, self.metric_ctx))
        if self.metric in LABEL_METRICS:  # ties on a step metric go to the better-calibrated
            value -= 1e-3 * min(score("log_loss", y, pred, self.metric_ctx), 5.0)
        return value

    def pipeline(self, family: str, params: dict[str, Any]) -> tuple[Any, Any]:
        from dataclasses import replace

        style = fam.style(family)
        elapsed = style == "linear" or bool(params.get("elapsed"))
        prep, n_cat = build_preprocessor(
            self.columns, style, self.ctx.task, self.ctx.seed, self.calendar, elapsed
        )
        # A forest's folds run one after another, each forest on every core (its trees in
        # threads), so only one forest is in memory at a time.
        n_jobs = n_workers() if family in BIG_MODELS else self.ctx.n_jobs
        ctx = replace(self.ctx, categorical_positions=tuple(range(n_cat)), n_jobs=n_jobs)
        return prep, fam.build_model(family, params, ctx)


def fit_pipeline(
    problem: Problem,
    family: str,
    params: dict[str, Any],
    X: Any,
    y: np.ndarray,
    weight: np.ndarray | None,
    deadline: float | None,
) -> tuple[Any, dict[str, Any]]:
    """Fit preprocessing and model on (X, y) only -- early stopping included, on an inner split
    of these rows; returns the fitted Pipeline and its facts."""
    from sklearn.pipeline import Pipeline

    prep, model = problem.pipeline(family, params)
    Xt = prep.fit_transform(X, y)
    model, facts = fitting.fit_model(
        family,
        model,
        Xt,
        y,
        weight,
        deadline,
        classification=problem.ctx.classification,
        ordered=problem.ordered,
        seed=problem.ctx.seed,
        target_transform=bool(params.get("target_transform")),
    )
    return Pipeline([("prep", prep), ("model", model)]), facts


def evaluate(
    problem: Problem,
    family: str,
    params: dict[str, Any],
    candidate_id: int,
    deadline: float,
    keep_models: bool = True,
    folds: int | None = None,
) -> Candidate | None:
    """Cross-validate one configuration; None when the deadline cut it short.

    With ``keep_models``, the candidate keeps its first fold's fitted pipeline (``models``).
    """
    classification = problem.ctx.classification
    n = len(problem.y)
    width = problem.ctx.n_classes if classification else 0
    total = np.zeros((n, width)) if classification else np.zeros(n)
    counts = np.zeros(n)
    fold_scores: list[float] = []
    models: list[Any] = []
    facts: list[dict[str, Any]] = []
    start = time.monotonic()

    def run_fold(
        item: tuple[int, tuple[np.ndarray, np.ndarray]],
    ) -> tuple[Any, dict[str, Any], np.ndarray]:
        index, (train_idx, valid_idx) = item
        if time.monotonic() > deadline:
            raise _OutOfTime
        began = time.monotonic()
        with threadpool_limits(limits=1):
            X_tr, X_va = problem.X.iloc[train_idx], problem.X.iloc[valid_idx]
            y_tr = problem.y[train_idx]
            w_tr = problem.weight[train_idx] if problem.weight is not None else None
            pipeline, fact = fit_pipeline(problem, family, params, X_tr, y_tr, w_tr, deadline)
            fitted = time.monotonic()
            pred = fitting.predict(pipeline, X_va, classification)
            per_row = (time.monotonic() - fitted) / max(1, len(valid_idx))
        if classification and pred.shape[1] != width:  # a class missing from this fold
            full = np.zeros((len(valid_idx), width))
            full[:, pipeline.classes_.astype(int)] = pred
            pred = full
        fact = {**fact, "seconds": round(time.monotonic() - began, 4), "predict_row_s": per_row}
        # Only the first fold's model is kept (to publish, or as a last resort final model): the
        # others are released here, so at most one per core is alive at a time.
        return (pipeline if keep_models and index == 0 else None), fact, pred

    try:
        folds_to_run = list(enumerate(problem.splits[: folds or None]))
        if family in BIG_MODELS:
            results = [run_fold(fold) for fold in folds_to_run]
        else:
            results = parallel_map(run_fold, folds_to_run)
    except _OutOfTime:
        return None
    finally:
        release_memory()
    for (_, valid_idx), (pipeline, fact, pred) in zip(problem.splits, results, strict=False):
        total[valid_idx] += pred
        counts[valid_idx] += 1
        fold_scores.append(score(problem.metric, problem.y[valid_idx], pred, problem.metric_ctx))
        facts.append(fact)
        if pipeline is not None:
            models.append(pipeline)
    seen = counts > 0
    oof = total.copy()
    oof[seen] = (total[seen].T / counts[seen]).T if classification else total[seen] / counts[seen]
    if classification:
        oof[~seen] = 1.0 / width
    mask_backup = problem.mask
    if folds is not None:
        problem.mask = seen
    try:
        value = problem.oof_utility(oof)
    finally:
        problem.mask = mask_backup
    return Candidate(
        id=candidate_id,
        family=family,
        params=params,
        utility=value,
        cv_mean=float(np.mean(fold_scores)),
        cv_std=float(np.std(fold_scores)),
        fit_time_s=time.monotonic() - start,
        oof=oof,
        facts=facts,
        models=models if keep_models else None,
    )


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
        patience: int = PATIENCE,
    ) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.problem = problem
        self.families = list(family_names)
        self.seed = seed
        self.on_candidate = on_candidate
        self.on_event = on_event
        self.cancelled = cancelled
        self.keep_top = keep_top
        self.patience = patience
        self.candidates: list[Candidate] = []
        self.failures: dict[str, list[str]] = {}
        self.dropped: dict[str, str] = {}
        self.costs: dict[str, list[float]] = {}
        self.studies: dict[str, Any] = {}
        for i, name in enumerate(self.families):
            sampler = optuna.samplers.TPESampler(
                seed=seed + i, n_startup_trials=6, multivariate=True
            )
            study = optuna.create_study(direction="maximize", sampler=sampler)
            for config in fam.portfolio(name, problem.ctx):
                study.enqueue_trial(config)
            self.studies[name] = study
        self.rng = np.random.default_rng(seed)

    @property
    def best(self) -> Candidate | None:
        return max(self.candidates, key=lambda c: c.utility, default=None)

    def _alive(self) -> list[str]:
        return [f for f in self.families if f not in self.dropped]

    def _expected_cost(self, family: str) -> float:
        costs = self.costs.get(family)
        if costs:
            return float(np.median(costs))
        known = [(f, float(np.median(c))) for f, c in self.costs.items() if c]
        if not known:
            return 0.0
        per_unit = float(np.median([cost / fam.RELATIVE_COST[f] for f, cost in known]))
        return per_unit * fam.RELATIVE_COST[family]

    def replay(self, configs: list[tuple[str, dict[str, Any]]], deadline: float) -> None:
        """Evaluate known configurations (a resumed job's ensemble) instead of searching."""
        for family, params in configs:
            if self.cancelled() or time.monotonic() > deadline:
                return
            self._trial(family, deadline, params)

    def _trial(self, family: str, deadline: float, fixed: dict[str, Any] | None = None) -> None:
        study = self.studies[family]
        trial: Any = None
        if fixed is None:
            trial = study.ask(fam.search_space(family, self.problem.ctx))
        params = dict(fixed) if fixed is not None else dict(trial.params)
        start = time.monotonic()
        try:
            # Forests grow with the rows: their fold models are dropped once they have predicted.
            candidate = evaluate(
                self.problem,
                family,
                params,
                len(self.candidates),
                deadline,
                keep_models=family not in BIG_MODELS,
            )
        except MemoryError:
            self.dropped[family] = "ran out of memory"
            self.on_event(f"{family} dropped: ran out of memory")
            _tell(study, trial, None)
            return
        except Exception as error:  # a family's own failure: recorded, retried, then dropped
            self.failures.setdefault(family, []).append(f"{type(error).__name__}: {error}")
            _tell(study, trial, None)
            if len(self.failures[family]) >= 2:
                self.dropped[family] = f"failed twice: {self.failures[family][-1][:300]}"
                self.on_event(f"{family} dropped: {self.dropped[family]}")
            return
        self.costs.setdefault(family, []).append(time.monotonic() - start)
        if candidate is None:
            _tell(study, trial, None)
            return
        _tell(study, trial, candidate.utility)
        self.candidates.append(candidate)
        self.on_candidate(candidate)
        self._trim_models()
        release_memory()

    def _trim_models(self) -> None:
        """Keep a fold model only for the best candidate that has one (the fallback final model
        when there is no time to fit the chosen ones again); the rest keep their out-of-fold
        predictions only, to bound memory."""
        kept = 0
        for candidate in sorted(self.candidates, key=lambda c: c.utility, reverse=True):
            if candidate.models is None:
                continue
            if kept >= self.keep_top:
                candidate.models = None
            kept += 1

    def _pick(self, remaining: float) -> str | None:
        alive = [f for f in self._alive() if self._expected_cost(f) <= remaining]
        if not alive:
            return None
        untried = [f for f in alive if f not in self.costs]
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

        ``deadline`` is re-read after every trial: it moves as the cost of the final refit of
        the best models becomes known.
        """
        while not self.cancelled():
            if self.converged():
                return "converged"
            remaining = deadline() - time.monotonic()
            if remaining <= 0:
                return "time"
            family = self._pick(remaining)
            if family is None:
                return "time"
            self._trial(family, deadline())
            if not self._alive():
                return "no family left"
        return "cancelled"


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

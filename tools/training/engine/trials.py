"""One candidate, cross-validated: the Problem it is evaluated on, the Candidate it becomes.

Each candidate is a (family, params) pair evaluated on the same folds, giving out-of-fold
predictions (for ensembling) and per-fold scores. ``evaluate`` is what every evaluator of
fanout.py runs, here or in a worker process or a Modal container, so a Problem and a Candidate
travel (pickled) between them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from mltrainer.state.errors import InternalError
from mltrainer.tools.machine import n_workers, parallel_map, release_memory
from mltrainer.tools.training.engine import families as fam
from mltrainer.tools.training.engine import fitting
from mltrainer.tools.training.engine.metrics import MetricContext, score, utility
from mltrainer.tools.training.engine.preprocess import build_preprocessor
from mltrainer.tools.training.plan import ColumnPlan
from mltrainer.tools.training.results import LeaderboardEntry

log = logging.getLogger(__name__)
# Families whose fitted models grow with the rows (forests): fold models never kept.
BIG_MODELS = ("random_forest", "extra_trees")
# Folds of more training cells (rows x columns) than this run one at a time, the model on every
# core: side by side, each core's fold held its own copies of the data (mixed_100k's 45k x 50
# folds: 150 MB each), and a model this large uses its threads well.
SIDE_BY_SIDE_CELLS = 1_000_000
LABEL_METRICS = ("accuracy", "balanced_accuracy", "f1", "precision", "recall")


def side_by_side(rows: int, columns: int) -> bool:
    """Whether models fitted on this many rows and columns run side by side, one per core."""
    return rows * columns <= SIDE_BY_SIDE_CELLS


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
    oof: np.ndarray | None  # out-of-fold predictions; None once it cannot be chosen (search.py)
    facts: list[dict[str, Any]]
    models: list[Any] | None = None

    @property
    def fold_seconds(self) -> float:
        """Mean time of one fold's fit and predict (single-threaded)."""
        return float(np.mean([f.get("seconds", 0.0) for f in self.facts])) if self.facts else 0.0

    def out_of_fold(self) -> np.ndarray:
        """Its out-of-fold predictions, which the best candidates keep."""
        if self.oof is None:
            raise InternalError(f"{self.family}#{self.id}'s out-of-fold predictions were released")
        return self.oof

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

    X: Any  # pandas DataFrame of the training rows; None once a sampled search is over
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

    def fold_threads(self, family: str) -> int:
        """1: this family's folds run side by side, one thread each; more: one fold at a time,
        on that many threads. Forests and large folds go one at a time, so one fold's model and
        copies of the data are in memory, not one per core."""
        rows = max((len(train) for train, _ in self.splits), default=0)
        if family in BIG_MODELS or not side_by_side(rows, self.X.shape[1]):
            return n_workers()
        return 1

    def pipeline(self, family: str, params: dict[str, Any], threads: int = 1) -> tuple[Any, Any]:
        """The unfitted preprocessing and model; the model uses ``threads`` threads."""
        from dataclasses import replace

        style = fam.style(family)
        elapsed = style == "linear" or bool(params.get("elapsed"))
        prep, n_cat = build_preprocessor(
            self.columns, style, self.ctx.task, self.ctx.seed, self.calendar, elapsed
        )
        ctx = replace(self.ctx, categorical_positions=tuple(range(n_cat)), n_jobs=threads)
        return prep, fam.build_model(family, params, ctx)


def fit_pipeline(
    problem: Problem,
    family: str,
    params: dict[str, Any],
    X: Any,
    y: np.ndarray,
    weight: np.ndarray | None,
    deadline: float | None,
    threads: int = 1,
) -> tuple[Any, dict[str, Any]]:
    """Fit preprocessing and model on (X, y) only -- early stopping included, on an inner split
    of these rows; returns the fitted Pipeline and its facts. The model is built for ``threads``
    threads (XGBoost's, a forest's); the caller limits the native pools to as many."""
    from sklearn.pipeline import Pipeline

    prep, model = problem.pipeline(family, params, threads)
    Xt = prep.fit_transform(X, y)
    if family == "hist_gradient_boosting" and isinstance(Xt, np.ndarray):
        # It bins float64 rows only: converted once, here, rather than a float64 copy of the
        # fitting rows at every warm-start chunk beside the float32 array.
        Xt = Xt.astype(np.float64)
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
        owned=True,
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
    threads = problem.fold_threads(family)

    def run_fold(
        item: tuple[int, tuple[np.ndarray, np.ndarray]],
    ) -> tuple[Any, dict[str, Any], np.ndarray]:
        index, (train_idx, valid_idx) = item
        if time.monotonic() > deadline:
            raise _OutOfTime
        began = time.monotonic()
        with threadpool_limits(limits=threads):
            X_tr, X_va = problem.X.iloc[train_idx], problem.X.iloc[valid_idx]
            y_tr = problem.y[train_idx]
            w_tr = problem.weight[train_idx] if problem.weight is not None else None
            pipeline, fact = fit_pipeline(
                problem, family, params, X_tr, y_tr, w_tr, deadline, threads
            )
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
        if threads > 1:
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
    oof = total
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
        # Probabilities are kept in float32: one candidate's are rows x classes, and a
        # many-class search holds a dozen (scores are computed in float64 all the same).
        oof=oof.astype(np.float32) if classification else oof,
        facts=facts,
        models=models if keep_models else None,
    )

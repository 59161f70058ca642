"""The end of a tabular run: calibration and decision, holdout score, refit, importance, result.

:class:`TabularEnd` is the base of :class:`~.tabular.TabularRun`: it holds the fitting steps the
phases share and the last phases; TabularRun sets the fields in its ``__init__`` and runs the
phases before (baseline, search, ensemble).

What the numbers mean: ``score`` is the held-out test score of the chosen pipeline fitted on the
training rows only (with its calibration and decision rule, both chosen out of fold); CV mean ±
std is beside it; the model ``predict`` uses is then refitted on every row when time allows, and
the result says so; permutation importance is measured with the model that never saw the
held-out rows.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from mltrainer.state.errors import InternalError, InvalidInput
from mltrainer.tools.machine import (
    n_workers,
    parallel_map,
    release_memory,
    threads_each,
)
from mltrainer.tools.training.engine import families as fam
from mltrainer.tools.training.engine import importance as imp
from mltrainer.tools.training.engine.calibration import tune
from mltrainer.tools.training.engine.custom import BlendModel, calibrate_proba
from mltrainer.tools.training.engine.metrics import companions, score, utility
from mltrainer.tools.training.engine.search import Candidate, Problem, Search, fit_pipeline
from mltrainer.tools.training.engine.tabular_data import TabularData
from mltrainer.tools.training.engine.trials import side_by_side
from mltrainer.tools.training.plan import TrainingPlan
from mltrainer.tools.training.progress import PublishedModel, Reporter
from mltrainer.tools.training.results import (
    AutoMLResult,
    HoldoutFrame,
    ImportanceEntry,
    LeaderboardEntry,
)

if TYPE_CHECKING:
    import pandas as pd

Member = tuple[Candidate, float]  # a chosen candidate and its weight in the blend
PUBLISH_EVERY_S = 3.0


class TabularEnd:
    """Fitting the chosen models, scoring them on the holdout, and describing the result."""

    plan: TrainingPlan
    reporter: Reporter
    data: TabularData
    problem: Problem
    search_rows: np.ndarray  # the problem's rows, as positions into the labelled data
    search: Search
    start: float
    budget: float
    end: float
    baseline: tuple[Any, float] | None
    # The model the run ends with: replaced, not kept beside, when it is refitted (memory).
    final: BlendModel | None
    stopped: str
    selection: str
    # The chosen model's out-of-fold predictions (cross-fitted for a blend).
    chosen_oof: np.ndarray | None
    threshold: float | None
    published_utility: float
    published_at: float

    def publish(
        self, name: str, estimator: Any, value: float, force: bool = False, held_out: bool = False
    ) -> None:
        """Hand a better model to the reporter; at most one every PUBLISH_EVERY_S unless forced.
        ``held_out``: ``value`` is its held-out test score (the final model), not a fold's."""
        now = time.monotonic()
        if not force and now - self.published_at < PUBLISH_EVERY_S:
            return
        plan = self.plan
        self.published_utility, self.published_at = utility(plan.metric, value), now
        self.reporter.publish(
            estimator,
            PublishedModel(
                name=name,
                task=plan.task,
                metric=plan.metric,
                score=value,
                score_source="holdout" if held_out else "validation",
                threshold=self.threshold if held_out else None,
                features=plan.feature_names,
                classes=self.data.class_names(),
                positive_class=plan.positive_class,
            ),
        )

    # -- fitting ----------------------------------------------------------------------------
    def blend(self, members: list[list[Any]], weights: list[float]) -> BlendModel:
        data = self.data
        return BlendModel(
            task=data.task,
            features=self.plan.feature_names,
            members=members,
            weights=weights,
            classes=data.classes(),
            positive_index=data.positive_index,
        )

    def fit_members(self, members: list[Member], rows: np.ndarray) -> list[list[Any]]:
        """Each member fitted once on ``rows`` of the labelled data (in time order when there
        is one: early stopping then watches the latest rows): side by side, one per core, or
        on large data one at a time, each on every core."""
        data, problem, end = self.data, self.problem, self.end
        order = data.time_order(rows)
        if order is not None:
            rows = rows[order]
        X = self.features(rows)
        y = data.y[rows]
        weight = data.weight[rows] if data.weight is not None else None

        together = side_by_side(len(rows), X.shape[1])
        threads = threads_each(len(members)) if together else n_workers()

        def fit(member: Member) -> list[Any]:
            candidate = member[0]
            params = fam.refit_params(candidate.family, candidate.params, candidate.facts)
            with threadpool_limits(limits=threads):
                model, _ = fit_pipeline(
                    problem, candidate.family, params, X, y, weight, end, threads
                )
            release_memory()
            return [model]

        return parallel_map(fit, members) if together else [fit(member) for member in members]

    def features(self, rows: np.ndarray) -> pd.DataFrame:
        """The labelled data's ``rows``, copied only when no frame holds them already: the
        search's rows are its problem's frame (until it is released), and every row in order
        is the data's."""
        data, problem = self.data, self.problem
        if (
            problem.X is not None
            and len(rows) == len(problem.y)
            and np.array_equal(rows, self.search_rows)
        ):
            return problem.X
        if len(rows) == len(data.y) and np.array_equal(rows, np.arange(len(rows))):
            return data.X
        return data.X.iloc[rows]

    def refit_estimate(self, members: list[Candidate], n_rows: int | None = None) -> float:
        """Seconds to fit these candidates on ``n_rows`` rows (default: all), in parallel, from
        their fold times (which include a prediction of the validation rows)."""
        fold_rows = float(np.mean([len(tr) for tr, _ in self.problem.splits]))
        scale = (n_rows or len(self.data.y)) / fold_rows * 1.3
        per_model = sorted((c.fold_seconds * scale for c in members), reverse=True)
        return max(per_model[0] if per_model else 0.0, sum(per_model) / n_workers())

    # -- calibration and decision -------------------------------------------------------------
    def tune(self) -> None:
        """Calibration and decision rule from the chosen model's out-of-fold predictions, set on
        the final model and on how its labels are scored."""
        data, plan, final, oof = self.data, self.plan, self.final, self.chosen_oof
        if not data.classification or final is None or oof is None:
            return
        rows = self.problem.mask
        tuning = tune(oof[rows], self.problem.y[rows], plan.metric, data.metric_ctx, plan.seed)
        for stage, decision, reason in tuning.decisions:
            if plan.positive_class is not None:
                decision = decision.replace(
                    f"P(class {data.positive_index})", f"P({plan.positive_class})"
                )
            plan.decide(stage, decision, reason)
        final.calibration, final.class_weights = tuning.calibration, tuning.class_weights
        self.threshold = tuning.threshold
        if tuning.class_weights is not None:
            data.metric_ctx = replace(data.metric_ctx, class_weights=tuple(tuning.class_weights))

    # -- the end ----------------------------------------------------------------------------
    def keep_baseline(self, why: str) -> AutoMLResult:
        """No candidate finished (or none beat it): the baseline (fitted on the first fold's
        training rows)."""
        if self.baseline is None:
            raise InvalidInput(
                "No model could be trained in the time budget.",
                next_step="Raise time_budget_s or allow more model families.",
            )
        self.plan.decide("search", "keep the baseline", why)
        self.selection = f"the baseline alone: {why}"
        model, value = self.baseline
        self.final = self.blend([[model]], [1.0])
        holdout = self.holdout(self.final)
        return self.result([], holdout, (value, 0.0), self.final, self.end)

    def finish(self, members: list[Member]) -> AutoMLResult:
        """The chosen models (``final``) scored on the holdout as fitted on the training rows,
        published, then refitted on every row; importance with the model that was scored."""
        if self.final is None:
            raise InternalError("the chosen models were not fitted before their holdout")
        trained = self.final
        holdout = self.holdout(trained)
        name = "ensemble" if len(members) > 1 else f"{members[0][0].family}#{members[0][0].id}"
        if not self.reporter.cancelled():
            self.publish(name, trained, holdout[0][self.plan.metric], force=True, held_out=True)
            refitted = self.refit(members)
            if refitted is not None:
                refitted.calibration, refitted.class_weights = (
                    trained.calibration,
                    trained.class_weights,
                )
                self.final = refitted
        release_memory(collect=True)
        # importance may use a little of the 10% the budget promise allows beyond the budget,
        # and has half a second at least (a model that cannot be explained is worth less)
        importance_end = max(self.end + 0.04 * self.budget, time.monotonic() + 0.5)
        return self.result(members, holdout, self.cross_validated(), trained, importance_end)

    def cross_validated(self) -> tuple[float, float]:
        """Mean and spread over the folds of the chosen model's out-of-fold predictions, scored
        with its calibration and decision rule."""
        problem, final, oof = self.problem, self.final, self.chosen_oof
        if oof is None:
            return float("nan"), float("nan")
        if self.data.classification and final is not None:
            oof = calibrate_proba(oof, final.calibration)
        fold_scores = [
            score(self.plan.metric, problem.y[valid], oof[valid], self.data.metric_ctx)
            for _, valid in problem.splits
        ]
        return float(np.mean(fold_scores)), float(np.std(fold_scores))

    def holdout(self, model: BlendModel) -> tuple[dict[str, float], HoldoutFrame]:
        """Scores on the held-out rows, which no fitted model has seen, and what the plots need."""
        data, plan = self.data, self.plan
        X_test = data.X.iloc[data.test]
        y_test = data.y[data.test]
        if data.classification:
            proba = model.predict_proba(X_test)
            pred_matrix = proba
            y_pred = model.decide(proba)
        else:
            proba = None
            pred_matrix = model.predict(X_test)
            y_pred = pred_matrix
        holdout = {plan.metric: score(plan.metric, y_test, pred_matrix, data.metric_ctx)}
        holdout.update(companions(data.task, y_test, pred_matrix, data.metric_ctx))
        self.reporter.event(f"Holdout {plan.metric}: {holdout[plan.metric]:.4f}", progress=0.9)
        y_labels = data.labels[y_test] if data.labels is not None else y_test
        frame = HoldoutFrame(x_test=X_test, y_test=y_labels, y_pred=y_pred, proba=proba)
        return holdout, frame

    def refit(self, members: list[Member]) -> BlendModel | None:
        """Each member refitted once on every labelled row (train + holdout), if it fits in time."""
        plan, data = self.plan, self.data
        estimate = self.refit_estimate([c for c, _ in members])
        remaining = self.end - time.monotonic()
        if estimate > remaining - 0.04 * plan.time.total_s or len(data.test) == 0:
            plan.decide(
                "refit",
                "keep the models fitted on the training rows",
                f"no rows were held out, or a refit on all rows would take about {estimate:.1f}s, "
                f"{remaining:.1f}s remain",
            )
            return None
        self.reporter.event("Refitting the chosen models on all rows", progress=0.9)
        refitted = self.fit_members(members, np.arange(len(data.y)))
        if self.reporter.cancelled():
            return None
        plan.decide(
            "refit",
            "refit on all labelled rows",
            "the holdout was scored first; the model predict uses learns from every row",
        )
        return self.blend(refitted, [w for _, w in members])

    def result(
        self,
        members: list[Member],
        holdout: tuple[dict[str, float], HoldoutFrame],
        cv: tuple[float, float],
        trained: BlendModel,
        importance_end: float,
    ) -> AutoMLResult:
        """``importance_end`` is the last moment a permutation may start (its cost subtracted)."""
        plan, data, final = self.plan, self.data, self.final
        weights = {c.id: w for c, w in members}
        importance = [] if self.reporter.cancelled() else self.importance(trained, importance_end)
        warnings = list(plan.warnings)
        dominant = imp.dominant_feature(importance, plan.metric)
        if dominant:
            warnings.append(dominant)
        return AutoMLResult(
            estimator=final,
            task=plan.task,
            metric=plan.metric,
            greater_is_better=plan.greater_is_better,
            target=plan.target,
            features=plan.feature_names,
            classes=data.class_names(),
            positive_class=plan.positive_class,
            plan=plan,
            decisions=plan.decisions,
            leaderboard=leaderboard(self.search.candidates, weights),
            cv_mean=cv[0],
            cv_std=cv[1],
            holdout=holdout[0],
            score=holdout[0][plan.metric],
            refit=final is not trained,
            selection=self.selection,
            calibration=_calibration_text(trained),
            threshold=self.threshold,
            warnings=warnings,
            feature_importance=imp.as_pairs(importance),
            importance=importance,
            holdout_frame=holdout[1],
            dropped_columns=plan.dropped,
            seed=plan.seed,
            elapsed_s=round(time.monotonic() - self.start, 3),
            search_stopped=self.stopped,
            model_name="ensemble"
            if len(members) > 1
            else (f"{members[0][0].family}" if members else "baseline"),
        )

    def importance(self, model: BlendModel, end: float) -> list[ImportanceEntry]:
        """Permutation importance on held-out rows, with the model fitted on the training rows."""
        plan, data = self.plan, self.data
        if len(data.test) < 2:  # a late start still gets a first pass (imp.FIRST_PASS_S)
            return []

        def value(frame: pd.DataFrame, y: np.ndarray) -> float:
            pred = model.predict_proba(frame) if data.classification else model.predict(frame)
            return utility(plan.metric, score(plan.metric, y, pred, data.metric_ctx))

        X, y = data.X.iloc[data.test], data.y[data.test]
        found, _ = imp.permutation_importance(value, X, y, plan.feature_names, plan.seed, end)
        plan.decide(*imp.describe_scope(found, len(plan.feature_names), len(X)))
        return found


def _calibration_text(model: BlendModel) -> str | None:
    if not model.calibration:
        return None
    if len(model.calibration) == 2:
        a, b = model.calibration
        return f"Platt scaling on out-of-fold predictions: sigmoid({a:.3f} * logit + {b:.3f})"
    return f"temperature scaling on out-of-fold predictions: p ** {model.calibration[0]:.3f}"


def leaderboard(candidates: list[Candidate], weights: dict[int, float]) -> list[LeaderboardEntry]:
    """Every candidate, best first, with its weight in the final model."""
    ranked = sorted(candidates, key=lambda c: c.utility, reverse=True)
    return [c.entry(weights.get(c.id, 0.0)) for c in ranked]

"""The end of a tabular run: holdout scores, the refit on all rows, importance, the result.

:class:`TabularEnd` is the base of :class:`~.tabular.TabularRun`: it holds the fitting steps the
phases share and the last phases; TabularRun sets the fields in its ``__init__`` and runs the
phases before (baseline, search, ensemble).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from mltrainer.state.errors import InternalError, InvalidInput
from mltrainer.tools.training.engine import families as fam
from mltrainer.tools.training.engine.custom import BlendModel
from mltrainer.tools.training.engine.machine import n_workers, parallel_map, release_memory
from mltrainer.tools.training.engine.metrics import companions, score, utility
from mltrainer.tools.training.engine.search import (
    Candidate,
    Problem,
    Search,
    fit_pipeline,
)
from mltrainer.tools.training.engine.tabular_data import TabularData
from mltrainer.tools.training.plan import TrainingPlan
from mltrainer.tools.training.progress import Reporter
from mltrainer.tools.training.results import AutoMLResult, HoldoutFrame, LeaderboardEntry

if TYPE_CHECKING:
    import pandas as pd

IMPORTANCE_ROWS = 200
Member = tuple[Candidate, float]  # a chosen candidate and its weight in the blend


class TabularEnd:
    """Fitting the chosen models, scoring them on the holdout, and describing the result."""

    plan: TrainingPlan
    reporter: Reporter
    data: TabularData
    problem: Problem
    search: Search
    start: float
    budget: float
    end: float
    baseline: tuple[Any, float] | None
    # The model the run ends with: replaced, not kept beside, when it is refitted (memory).
    final: BlendModel | None
    stopped: str

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
        """Each member fitted once on ``rows`` of the labelled data, one per core."""
        data, problem, end = self.data, self.problem, self.end
        X = data.X.iloc[rows]
        y = data.y[rows]
        weight = data.weight[rows] if data.weight is not None else None

        def fit(member: Member) -> list[Any]:
            candidate = member[0]
            params = fam.refit_params(candidate.family, candidate.params, candidate.facts)
            with threadpool_limits(limits=1):
                model, _ = fit_pipeline(problem, candidate.family, params, X, y, weight, None, end)
            release_memory()
            return [model]

        return parallel_map(fit, members)

    def refit_estimate(self, members: list[Candidate], n_rows: int | None = None) -> float:
        """Seconds to fit these candidates on ``n_rows`` rows (default: all), in parallel, from
        their fold times (which include a prediction of the validation rows)."""
        fold_rows = float(np.mean([len(tr) for tr, _ in self.problem.splits]))
        scale = (n_rows or len(self.data.y)) / fold_rows * 1.3
        per_model = sorted((c.fold_seconds * scale for c in members), reverse=True)
        return max(per_model[0] if per_model else 0.0, sum(per_model) / n_workers())

    # -- the end ----------------------------------------------------------------------------

    def keep_baseline(self) -> AutoMLResult:
        """No candidate finished: the baseline is the model."""
        if self.baseline is None:
            raise InvalidInput(
                "No model could be trained in the time budget.",
                next_step="Raise time_budget_s or allow more model families.",
            )
        self.plan.decide("search", "keep the baseline", "no candidate finished in time")
        model, value = self.baseline
        self.final = self.blend([[model]], [1.0])
        return self.result([], self.holdout(self.final), (value, 0.0), self.end)

    def finish(self, members: list[Member]) -> AutoMLResult:
        """The chosen models (``final``) scored on the holdout as fitted on the training rows,
        then refitted on every row."""
        if self.final is None:
            raise InternalError("the chosen models were not fitted before their holdout")
        holdout = self.holdout(self.final)
        if not self.reporter.cancelled():
            refitted = self.refit(members)
            if refitted is not None:
                self.final = refitted
        release_memory(collect=True)
        problem = self.problem
        blend_oof: np.ndarray = np.sum([w * c.oof for c, w in members], axis=0)
        fold_scores = [
            score(self.plan.metric, problem.y[valid], blend_oof[valid], problem.metric_ctx)
            for _, valid in problem.splits
        ]
        test_rows = len(self.data.test)
        predict_cost = sum(c.predict_seconds(1) for c, _ in members) * test_rows
        # importance may use a little of the 10% the budget promise allows beyond the budget
        importance_end = (
            self.end
            + 0.04 * self.budget
            - predict_cost * min(1.0, IMPORTANCE_ROWS / max(1, test_rows))
        )
        cv = (float(np.mean(fold_scores)), float(np.std(fold_scores)))
        return self.result(members, holdout, cv, importance_end)

    def holdout(self, model: BlendModel) -> tuple[dict[str, float], HoldoutFrame]:
        """Scores on the held-out rows, which no fitted model has seen, and what the plots need."""
        data, plan = self.data, self.plan
        X_test = data.X.iloc[data.test]
        y_test = data.y[data.test]
        if data.classification:
            proba = model.predict_proba(X_test)
            pred_matrix = proba
            y_pred = data.labels[np.argmax(proba, axis=1)] if data.labels is not None else None
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
            "the holdout was scored first; the final model learns from every row",
        )
        return self.blend(refitted, [w for _, w in members])

    def result(
        self,
        members: list[Member],
        holdout: tuple[dict[str, float], HoldoutFrame],
        cv: tuple[float, float],
        importance_end: float,
    ) -> AutoMLResult:
        """``importance_end`` is the last moment a permutation may start (its cost subtracted)."""
        plan, data, final = self.plan, self.data, self.final
        weights = {c.id: w for c, w in members}
        importance = (
            []
            if self.reporter.cancelled() or time.monotonic() > importance_end
            else self.importance(data.X.iloc[data.test], data.y[data.test], importance_end)
        )
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
            feature_importance=importance,
            holdout_frame=holdout[1],
            dropped_columns=plan.dropped,
            seed=plan.seed,
            elapsed_s=round(time.monotonic() - self.start, 3),
            search_stopped=self.stopped,
            model_name="ensemble"
            if len(members) > 1
            else (f"{members[0][0].family}" if members else "baseline"),
        )

    def importance(self, X: pd.DataFrame, y: np.ndarray, end: float) -> list[tuple[str, float]]:
        """Permutation importance on (up to 200) holdout rows, for as many columns as time allows."""
        plan, data, model = self.plan, self.data, self.final
        if model is None:
            return []
        rng = np.random.default_rng(plan.seed)
        if len(X) > IMPORTANCE_ROWS:
            rows = rng.choice(len(X), size=IMPORTANCE_ROWS, replace=False)
            X, y = X.iloc[rows], y[rows]
        X = X.reset_index(drop=True)

        def value(frame: pd.DataFrame) -> float:
            pred = model.predict_proba(frame) if data.classification else model.predict(frame)
            return utility(plan.metric, score(plan.metric, y, pred, data.metric_ctx))

        try:
            base = value(X)
        except ValueError:
            return []
        out: list[tuple[str, float]] = []
        for name in plan.feature_names:
            if time.monotonic() > end:
                plan.decide(
                    "importance",
                    f"computed for {len(out)} of {len(plan.feature_names)} columns",
                    "the time budget ran out",
                )
                break
            shuffled = X.copy()
            shuffled[name] = rng.permutation(shuffled[name].to_numpy())
            try:
                out.append((name, round(base - value(shuffled), 6)))
            except ValueError:
                continue
        return sorted(out, key=lambda kv: kv[1], reverse=True)


def leaderboard(candidates: list[Candidate], weights: dict[int, float]) -> list[LeaderboardEntry]:
    """Every candidate, best first, with its weight in the final model."""
    ranked = sorted(candidates, key=lambda c: c.utility, reverse=True)
    return [c.entry(weights.get(c.id, 0.0)) for c in ranked]

"""Binary, multiclass, regression and text classification: the supervised tabular flow.

holdout split → folds → fast baseline (published) → budgeted search (better models published)
→ greedy ensemble on out-of-fold predictions → holdout scores → refit on all rows if time allows.
Each phase is a method of :class:`TabularRun`; what they share is its fields. The end of the run
(holdout, refit, importance, the result) is its base class, in tabular_end.py.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel
from threadpoolctl import threadpool_limits

from mltrainer.tools.training.engine import families as fam
from mltrainer.tools.training.engine.ensemble import greedy_selection
from mltrainer.tools.training.engine.machine import release_memory
from mltrainer.tools.training.engine.metrics import score, utility
from mltrainer.tools.training.engine.search import (
    Candidate,
    CandidateSummary,
    Search,
    fit_pipeline,
)
from mltrainer.tools.training.engine.tabular_data import TabularData
from mltrainer.tools.training.engine.tabular_end import Member, TabularEnd
from mltrainer.tools.training.plan import TrainingPlan
from mltrainer.tools.training.progress import PublishedModel, Reporter

if TYPE_CHECKING:
    import pandas as pd

    from mltrainer.tools.training.results import AutoMLResult

SEARCH_SHARE = 0.85  # of the budget; the rest is ensemble, holdout, refit, importance
PUBLISH_EVERY_S = 3.0
POOL_SIZE = 12  # candidates the ensemble may choose from
STOP_REASONS = {
    "converged": "the best score stopped improving; the same data, settings and seed give the "
    "same candidates and model on any machine",
    "time": "the time budget ran out; how many candidates fit in it depends on the machine's "
    "speed, so another run may try more or fewer",
    "no family left": "every model family failed or was dropped",
    "cancelled": "the job was cancelled",
}


class ChosenMember(BaseModel):
    summary: CandidateSummary
    weight: float


class EnsembleCheckpoint(BaseModel):
    """The chosen models, saved once the search is over: a resumed job replays only these."""

    members: list[ChosenMember]


def fit_tabular(
    frame: pd.DataFrame, plan: TrainingPlan, reporter: Reporter, start: float
) -> AutoMLResult:
    return TabularRun(frame, plan, reporter, start).run()


class TabularRun(TabularEnd):
    """One supervised tabular training, phase by phase.

    ``search`` is made once the baseline is published (building it imports optuna).
    """

    def __init__(
        self, frame: pd.DataFrame, plan: TrainingPlan, reporter: Reporter, start: float
    ) -> None:
        self.plan = plan
        self.reporter = reporter
        self.start = start
        self.budget = plan.time.total_s
        self.end = start + self.budget
        self.data = TabularData(frame, plan)
        self.problem = self.data.problem(self._search_rows())
        self.published_utility = -np.inf
        self.published_at = 0.0
        self.baseline = None
        self.final = None
        self.stopped = ""

    def run(self) -> AutoMLResult:
        data, plan = self.data, self.plan
        self.reporter.event(
            f"{len(data.train)} training rows, {len(data.test)} held out, "
            f"{len(self.problem.splits)} folds ({plan.validation.kind})",
            progress=0.04,
        )
        self.fit_baseline()
        self.stopped = self.run_search()
        if not self.search.candidates:
            return self.keep_baseline()
        return self.finish(self.fit_chosen(self.choose_members()))

    # -- the data the search sees ---------------------------------------------------------
    def _search_rows(self) -> np.ndarray:
        rows = self.data.train
        cap = self.plan.max_search_rows or max(30000, int(self.budget * 800))
        if len(rows) > cap:
            rng = np.random.default_rng(self.plan.seed)
            rows = np.sort(rng.choice(rows, size=cap, replace=False))
            self.plan.decide(
                "search",
                f"search on a sample of {cap} rows",
                f"{len(self.data.train)} training rows would leave too few trials in the budget",
            )
        return rows

    def publish(self, name: str, estimator: Any, value: float, force: bool = False) -> None:
        """Hand a better model to the reporter; at most one every PUBLISH_EVERY_S unless forced."""
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
                features=plan.feature_names,
                classes=self.data.class_names(),
                positive_class=plan.positive_class,
            ),
        )

    # -- baseline ---------------------------------------------------------------------------
    def fit_baseline(self) -> None:
        """A fast model on the first fold, published at once."""
        plan = self.plan
        family = next(
            (f.name for f in plan.families if f.name in ("hist_gradient_boosting", "linear")),
            plan.families[0].name,
        )
        self.baseline = self._baseline_model(family)
        if self.baseline is None:
            return
        model, value = self.baseline
        self.publish(f"baseline {family}", self.blend([[model]], [1.0]), value, force=True)
        plan.decide("baseline", family, f"validation {plan.metric} {value:.4f}")
        self.reporter.event(f"Baseline {family}: {plan.metric} {value:.4f}", progress=0.08)

    def _baseline_model(self, family: str) -> tuple[Any, float] | None:
        """A quick model on the first fold; on failure, retried once smaller and simpler."""
        problem, plan = self.problem, self.plan
        train_idx, valid_idx = problem.splits[0]
        attempts = [(family, train_idx)]
        if family != "linear" or len(train_idx) > 5000:
            rng = np.random.default_rng(plan.seed)
            small = np.sort(rng.choice(train_idx, size=min(len(train_idx), 5000), replace=False))
            attempts.append(("linear", small))
        for name, rows in attempts:
            try:
                with threadpool_limits(limits=1):
                    model, _ = fit_pipeline(
                        problem,
                        name,
                        fam.portfolio(name, problem.ctx)[0],
                        problem.X.iloc[rows],
                        problem.y[rows],
                        problem.weight[rows] if problem.weight is not None else None,
                        None,
                        self.end,
                    )
                pred = fam.predict(model, problem.X.iloc[valid_idx], problem.ctx.classification)
            except (MemoryError, ValueError, TypeError, RuntimeError) as error:
                plan.decide(
                    "baseline",
                    f"{name} failed",
                    f"{type(error).__name__}: {str(error)[:200]}; retrying smaller and simpler",
                )
                continue
            if problem.ctx.classification and pred.shape[1] != problem.ctx.n_classes:
                continue
            return model, score(problem.metric, problem.y[valid_idx], pred, problem.metric_ctx)
        return None

    # -- search -----------------------------------------------------------------------------
    def run_search(self) -> str:
        """The budgeted search, or on a resumed job a replay of the models it had chosen.

        Returns why it stopped (a key of STOP_REASONS, or "replayed").
        """
        plan, reporter = self.plan, self.reporter
        self.search = Search(
            self.problem,
            [f.name for f in plan.families],
            plan.seed,
            on_candidate=self.on_candidate,
            on_event=lambda message: reporter.event(message, level="warning"),
            cancelled=reporter.cancelled,
        )
        resumed = reporter.restore("ensemble")
        chosen = EnsembleCheckpoint.model_validate(resumed).members if resumed else []
        if chosen:
            configs = [(m.summary.family, m.summary.params) for m in chosen]
            plan.decide(
                "resume",
                f"re-evaluate {len(configs)} chosen models, no search",
                "an earlier attempt of this job finished its search",
            )
            self.search.replay(configs, self.end - 0.1 * self.budget)
            stopped = "replayed"
        else:
            stopped = self.search.run(self.search_deadline)
            plan.decide("search", f"stopped: {stopped}", STOP_REASONS[stopped])
        for family, reason in self.search.dropped.items():
            plan.decide("search", f"drop {family}", reason)
        return stopped

    def on_candidate(self, candidate: Candidate) -> None:
        plan = self.plan
        elapsed = time.monotonic() - self.start
        self.reporter.event(
            f"{candidate.family}: {plan.metric} {candidate.cv_mean:.4f} ± {candidate.cv_std:.4f}",
            progress=min(0.85, 0.08 + 0.77 * elapsed / (self.budget * SEARCH_SHARE)),
        )
        self.reporter.checkpoint(
            "leaderboard",
            {"entries": [c.summary().model_dump(mode="json") for c in self.search.candidates]},
        )
        if candidate.models and candidate.utility > self.published_utility:
            self.publish(
                f"{candidate.family}#{candidate.id}",
                self.blend([candidate.models], [1.0]),
                candidate.cv_mean,
            )

    def search_deadline(self) -> float:
        """When the search must stop: time is kept to fit the best models twice more."""
        top = sorted(self.search.candidates, key=lambda c: c.utility, reverse=True)[:3]
        reserve = 0.06 * self.budget
        if top:
            # the chosen models are fitted twice more: on the training rows, then on all rows
            reserve += self.refit_estimate(top, len(self.data.train))
            reserve += self.refit_estimate(top)
            test_rows = len(self.data.test)
            reserve += 2 * top[0].predict_seconds(test_rows) + 0.01 * test_rows / 1000
        return min(self.start + self.budget * SEARCH_SHARE, self.end - reserve)

    # -- ensemble ---------------------------------------------------------------------------
    def choose_members(self) -> list[Member]:
        """A greedy blend of the best candidates' out-of-fold predictions, or the best alone."""
        plan = self.plan
        pool = sorted(self.search.candidates, key=lambda c: c.utility, reverse=True)[:POOL_SIZE]
        weights, blend_utility = greedy_selection([c.oof for c in pool], self.problem.oof_utility)
        best = pool[0]
        if blend_utility > best.utility + 1e-9 and sum(w > 0 for w in weights) > 1:
            plan.decide(
                "ensemble",
                f"blend of {sum(w > 0 for w in weights)} models",
                f"out-of-fold {plan.metric} {metric_value(plan.metric, blend_utility):.4f} "
                f"vs best single {metric_value(plan.metric, best.utility):.4f}",
            )
        else:
            weights = [1.0] + [0.0] * (len(pool) - 1)
            plan.decide(
                "ensemble",
                f"single model {best.family}#{best.id}",
                "no blend beat the best single model out of fold",
            )
        members = [(c, w) for c, w in zip(pool, weights, strict=True) if w > 0]
        checkpoint = EnsembleCheckpoint(
            members=[ChosenMember(summary=c.summary(), weight=w) for c, w in members]
        )
        self.reporter.checkpoint("ensemble", checkpoint.model_dump(mode="json"))
        return members

    def fit_chosen(self, members: list[Member]) -> list[Member]:
        """The chosen models fitted once on the training rows, published, as ``final``;
        returns the members used.

        Fold models are not kept (memory): each member is fitted again, once, on every training
        row. When that would not finish in time, the best candidate whose first fold model was
        kept is used as it is.
        """
        plan, search = self.plan, self.search
        fallback = next(
            (c for c in sorted(search.candidates, key=lambda c: -c.utility) if c.models), None
        )
        options = [members]
        if len(members) > 1:
            options.append([(members[0][0], 1.0)] if members[0][0].models is None else [])
        for option in options:
            if not option:
                continue
            estimate = self.refit_estimate([c for c, _ in option], len(self.data.train))
            if fallback is None or estimate <= self.end - time.monotonic() - 0.03 * self.budget:
                if option is not members:
                    plan.decide(
                        "ensemble",
                        f"single model {option[0][0].family}#{option[0][0].id}",
                        f"the blend would take about {estimate:.1f}s to fit on the training rows",
                    )
                models = self.fit_members(option, self.data.train)
                chosen = self.blend(models, [w for _, w in option])
                break
        else:
            assert fallback is not None  # the loop ends without a break only with a fallback
            plan.decide(
                "ensemble",
                f"{fallback.family}#{fallback.id} as fitted on its first fold",
                "no time to fit the chosen models on all training rows",
            )
            option = [(fallback, 1.0)]
            chosen = self.blend([fallback.models or []], [1.0])
        if not self.reporter.cancelled():
            self.publish(
                "ensemble" if len(option) > 1 else f"{option[0][0].family}#{option[0][0].id}",
                chosen,
                metric_value(plan.metric, max(c.utility for c, _ in option)),
                force=True,
            )
        for candidate in search.candidates:  # nothing needs the fold models from here on
            candidate.models = None
        release_memory(collect=True)
        self.final = chosen
        return option


def metric_value(metric: str, value_utility: float) -> float:
    """A utility (higher is better) back in the metric's own direction."""
    return value_utility if utility(metric, 1.0) == 1.0 else -value_utility

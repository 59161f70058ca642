"""Binary, multiclass, regression and text classification: the supervised tabular flow.

holdout split → folds → fast baseline (published) → budgeted search (better models published)
→ greedy ensemble on out-of-fold predictions (its merit judged by nested cross-fitting) →
calibration and decision rule out of fold → holdout scores → refit on all rows if time allows.
Each phase is a method of :class:`TabularRun`; what they share is its fields. Its start (the
baseline, the candidate guaranteed when the clock leaves the search none) is its base class, in
tabular_start.py; the end (holdout, refit, importance, the result) that one's, in tabular_end.py.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel

from mltrainer.tools.machine import release_memory
from mltrainer.tools.training.engine.ensemble import cross_fitted, greedy_selection
from mltrainer.tools.training.engine.fanout import evaluator_for
from mltrainer.tools.training.engine.importance import cost as importance_cost
from mltrainer.tools.training.engine.metrics import utility
from mltrainer.tools.training.engine.search import (
    Candidate,
    CandidateSummary,
    Search,
)
from mltrainer.tools.training.engine.tabular_data import TabularData
from mltrainer.tools.training.engine.tabular_end import Member
from mltrainer.tools.training.engine.tabular_start import NO_CANDIDATE, TabularStart
from mltrainer.tools.training.plan import TrainingPlan
from mltrainer.tools.training.progress import Reporter

if TYPE_CHECKING:
    import pandas as pd

    from mltrainer.tools.training.engine.custom import BlendModel
    from mltrainer.tools.training.results import AutoMLResult

SEARCH_SHARE = 0.85  # of the budget; the rest is ensemble, holdout, refit, importance
POOL_SIZE = 12  # candidates the ensemble may choose from
# a final fit on a sample of the training rows is worth it from this many times the fold rows
MORE_ROWS = 1.25
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


class TabularRun(TabularStart):
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
        self.search_rows = self._search_rows()
        self.problem = self.data.problem(self.search_rows)
        self.published_utility = -np.inf
        self.published_at = 0.0
        self.baseline = None
        self.guaranteed = False
        self.baseline_cost = None
        self.final = None
        self.stopped = ""
        self.selection = ""
        self.chosen_oof = None
        self.threshold = None

    def run(self) -> AutoMLResult:
        data, plan = self.data, self.plan
        self.reporter.event(
            f"{len(data.train)} training rows, {len(data.test)} held out, "
            f"{len(self.problem.splits)} folds ({plan.validation.kind})",
            progress=0.04,
        )
        self.fit_baseline()
        self.stopped = self.run_search()
        kept = self.baseline_beats_the_guaranteed() if self.search.candidates else NO_CANDIDATE
        if kept:
            self.grow_baseline()
            return self.keep_baseline(kept)
        members = self.fit_chosen(self.choose_members())
        self.tune()
        return self.finish(members)

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

    # -- search -----------------------------------------------------------------------------
    def run_search(self) -> str:
        """The budgeted search, or on a resumed job a replay of the models it had chosen.

        Returns why it stopped (a key of STOP_REASONS, or "replayed").
        """
        plan, reporter = self.plan, self.reporter
        evaluator = evaluator_for(self.problem, plan.parallel)
        if evaluator.width > 1:
            plan.decide(
                "search",
                f"{evaluator.width} trials at a time on {evaluator.where}",
                f"parallel={plan.parallel}; the ensemble and refit stay in this process",
            )
        self.search = Search(
            self.problem,
            [f.name for f in plan.families],
            plan.seed,
            on_candidate=self.on_candidate,
            on_event=lambda message: reporter.event(message, level="warning"),
            cancelled=reporter.cancelled,
            pool=POOL_SIZE,
            evaluator=evaluator,
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
            stopped = self.search.run(self.search_deadline) if self.search_has_time() else "time"
            plan.decide("search", f"stopped: {stopped}", STOP_REASONS[stopped])
            if stopped == "time" and not self.search.candidates:
                self.guarantee_candidate()
        for family, reason in self.search.dropped.items():
            plan.decide("search", f"drop {family}", reason)
        return stopped

    def search_has_time(self) -> bool:
        """Whether the search's first candidate can end before the search deadline, judged from
        the baseline's fit (the same family and configuration on fewer rows): a candidate the
        deadline cuts short costs its time and gives nothing. Folds that run one at a time
        (forests, large folds) add up; side by side, one fold's time is what is checked (the
        baseline's fit carries its first-time costs, so more would stop searches that fit)."""
        if self.baseline_cost is None:
            return True
        seconds, rows, _ = self.baseline_cost
        splits = self.problem.splits
        fold = seconds * len(splits[0][0]) / max(1, rows)
        one_at_a_time = self.problem.fold_threads(self.plan.families[0].name) > 1
        needed = fold * len(splits) if one_at_a_time else fold
        left = self.search_deadline() - time.monotonic()
        if needed <= left:
            return True
        what = f"its {len(splits)} folds, one at a time," if one_at_a_time else "a fold"
        self.plan.decide(
            "search",
            "not started",
            f"{what} would take about {needed:.1f}s (from the baseline's fit), {left:.1f}s remain",
        )
        return False

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
        top = self.search.ranked()[:3]
        reserve = 0.06 * self.budget
        if top:
            # the chosen models are fitted twice more: on the training rows, then on all rows
            reserve += self.refit_estimate(top, len(self.data.train))
            reserve += self.refit_estimate(top)
            test_rows = len(self.data.test)
            reserve += 2 * top[0].predict_seconds(test_rows) + 0.01 * test_rows / 1000
            reserve += importance_cost(
                top[0].predict_seconds(1), test_rows, len(self.plan.feature_names), self.budget
            )
        return min(self.start + self.budget * SEARCH_SHARE, self.end - reserve)

    # -- ensemble ---------------------------------------------------------------------------
    def choose_members(self) -> list[Member]:
        """A greedy blend of the best candidates' out-of-fold predictions, or the best alone:
        whichever does better under nested cross-fitting (each fold's rows scored by a choice
        made on the other folds), so the blend's weights never grade themselves."""
        plan, problem = self.plan, self.problem
        pool = self.search.ranked()[:POOL_SIZE]
        oofs = [c.out_of_fold() for c in pool]
        weights, _ = greedy_selection(oofs, problem.oof_utility)
        best = pool[0]
        blended = sum(w > 0 for w in weights) > 1
        if blended:
            nested_blend, nested_single = cross_fitted(
                oofs, problem.oof_utility, problem.splits, problem.mask
            )
            blend_value = problem.oof_utility(nested_blend)
            single_value = problem.oof_utility(nested_single)
            blended = blend_value > single_value + 1e-9
            comparison = (
                f"nested cross-fitted out-of-fold {plan.metric}: blend "
                f"{metric_value(plan.metric, blend_value):.4f}, best single "
                f"{metric_value(plan.metric, single_value):.4f}"
            )
        else:
            comparison = "no blend beat the best single model out of fold"
        if blended:
            plan.decide("ensemble", f"blend of {sum(w > 0 for w in weights)} models", comparison)
            self.chosen_oof = nested_blend
            self.selection = (
                f"the best of {len(self.search.candidates)} candidates by out-of-fold "
                f"{plan.metric}, blended with weights chosen on out-of-fold predictions; cv_mean "
                "scores the blend with weights chosen on the other folds (nested); score is the "
                "held-out test set, which no choice saw"
            )
        else:
            weights = [1.0] + [0.0] * (len(pool) - 1)
            plan.decide("ensemble", f"single model {best.family}#{best.id}", comparison)
            self.chosen_oof = best.out_of_fold()
            self.selection = (
                f"the best of {len(self.search.candidates)} candidates by out-of-fold "
                f"{plan.metric}: its cv_mean is the score it was chosen on (optimistic); score "
                "is the held-out test set, which no choice saw"
            )
        members = [(c, w) for c, w in zip(pool, weights, strict=True) if w > 0]
        checkpoint = EnsembleCheckpoint(
            members=[ChosenMember(summary=c.summary(), weight=w) for c, w in members]
        )
        self.reporter.checkpoint("ensemble", checkpoint.model_dump(mode="json"))
        return members

    def fit_chosen(self, members: list[Member]) -> list[Member]:
        """The chosen models fitted once on the training rows, as ``final`` (published once its
        holdout score is known); returns the members used.

        Fold models are not kept (memory): each member is fitted again, once, on every training
        row. When that would not finish in time, the best alone is fitted on as many training
        rows as the time left allows (see ``fit_what_time_allows``).
        """
        plan, search = self.plan, self.search
        if len(self.search_rows) < len(self.data.train):
            # The search ran on a sample, whose frame nothing reads from here on: the fits
            # below copy the rows they need (48k rows x 50 columns: 19 MB freed before them).
            self.problem.X = None
        fallback = next((c for c in search.ranked() if c.models), None)
        options = [members]
        if len(members) > 1:
            options.append([(members[0][0], 1.0)] if members[0][0].models is None else [])
        for option in options:
            if not option:
                continue
            estimate = self.refit_estimate([c for c, _ in option], len(self.data.train))
            if fallback is None or estimate <= self.time_to_fit():
                if option is not members:
                    plan.decide(
                        "ensemble",
                        f"single model {option[0][0].family}#{option[0][0].id}",
                        f"the blend would take about {estimate:.1f}s to fit on the training rows",
                    )
                models = self.fit_members(option, self.data.train)
                chosen = self.blend(models, [w for _, w in option])
                if option is not members:
                    self.chosen_oof = option[0][0].out_of_fold()
                break
        else:
            assert fallback is not None  # the loop ends without a break only with a fallback
            option, chosen = self.fit_what_time_allows(members[0][0], fallback)
        for candidate in search.candidates:  # nothing needs the fold models from here on
            candidate.models = None
        release_memory(collect=True)
        self.final = chosen
        return option

    def time_to_fit(self) -> float:
        """Seconds a fit of the chosen models may take: what is left, less a margin."""
        return self.end - time.monotonic() - 0.03 * self.budget

    def fit_what_time_allows(
        self, best: Candidate, fallback: Candidate
    ) -> tuple[list[Member], BlendModel]:
        """No time to fit on every training row (large data): the best candidate on as many of
        them as the time left allows (the latest ones when rows have a time order), when that is
        clearly more than its first fold model saw; else that fold model as it is."""
        plan, train = self.plan, self.data.train
        estimate = self.refit_estimate([best], len(train))
        affordable = min(len(train), int(len(train) * self.time_to_fit() / max(estimate, 1e-9)))
        if affordable >= MORE_ROWS * len(self.problem.splits[0][0]):
            order = self.data.time_order(train)
            if order is not None:
                rows = np.sort(train[order][-affordable:])
            else:
                rng = np.random.default_rng(self.plan.seed)
                rows = np.sort(rng.choice(train, size=affordable, replace=False))
            plan.decide(
                "ensemble",
                f"{best.family}#{best.id} fitted on {affordable} of {len(train)} training rows",
                f"a fit on all of them would take about {estimate:.0f}s; the time left fits "
                "about this many",
            )
            self.chosen_oof = best.out_of_fold()
            return [(best, 1.0)], self.blend(self.fit_members([(best, 1.0)], rows), [1.0])
        plan.decide(
            "ensemble",
            f"{fallback.family}#{fallback.id} as fitted on its first fold",
            "no time to fit the chosen models on all training rows",
        )
        self.chosen_oof = fallback.out_of_fold()
        return [(fallback, 1.0)], self.blend([fallback.models or []], [1.0])


def metric_value(metric: str, value_utility: float) -> float:
    """A utility (higher is better) back in the metric's own direction."""
    return value_utility if utility(metric, 1.0) == 1.0 else -value_utility

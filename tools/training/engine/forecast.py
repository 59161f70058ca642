"""Forecasting one series or several (a panel): lag, rolling and calendar features, a seeded search.

With ``group_column`` one global model learns every series (see forecast_data.py). The holdout is
the last ``n_test`` points of every series, forecast recursively from the end of the training
part (as the model will be used). Candidates (forecast_candidates.py) are compared on recursive
``n_test``-step forecasts from up to 8 origins spread in time order over the union of timestamps
(the model learns the rows up to each origin), until the search budget runs out; the winner is
refitted on all the data. Each phase is a method of :class:`ForecastRun`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from mltrainer.state.errors import InternalError
from mltrainer.tools.machine import parallel_map
from mltrainer.tools.training.engine.custom import ForecastModel, SeasonalNaive, recursive_forecast
from mltrainer.tools.training.engine.forecast_candidates import Candidate, candidates, with_blend
from mltrainer.tools.training.engine.forecast_data import (
    Fold,
    build_folds,
    build_panel,
    build_table,
    holdout_frame,
    lags_for,
    season_length,
    series_scale,
)
from mltrainer.tools.training.engine.metrics import MetricContext, companions, score, utility
from mltrainer.tools.training.plan import TrainingPlan
from mltrainer.tools.training.progress import PublishedModel, Reporter, TrainingCancelled
from mltrainer.tools.training.results import (
    AutoMLResult,
    HoldoutFrame,
    LeaderboardEntry,
)

if TYPE_CHECKING:
    import pandas as pd

SEARCH_SHARE = 0.75  # of the budget; the rest is the holdout and the final refit
BLEND_AT = 0.5  # share of the budget after which the blend of the best is tried


def fit_forecast(
    frame: pd.DataFrame, plan: TrainingPlan, reporter: Reporter, start: float
) -> AutoMLResult:
    return ForecastRun(frame, plan, reporter, start).run()


@dataclass
class Best:
    """The best candidate so far: its score over the folds, and its fit on the training part."""

    cv: float
    candidate: Candidate
    on_train: Any


class ForecastRun:
    """One forecast training, phase by phase: set-up, search, holdout, final refit, result."""

    def __init__(
        self, frame: pd.DataFrame, plan: TrainingPlan, reporter: Reporter, start: float
    ) -> None:
        self.plan, self.reporter, self.start = plan, reporter, start
        self.total = plan.time.total_s
        self.end = start + self.total
        if plan.columns:
            plan.decide(
                "forecast",
                f"ignore {len(plan.columns)} other columns",
                "the forecaster uses the series' own past and the calendar only",
            )
        self.panel = build_panel(frame, plan)
        self.several = self.panel.column is not None
        n_min = min(len(v) for v in self.panel.values)
        horizon = plan.horizon or max(1, min(n_min // 5, 30))
        self.n_test = min(horizon, max(1, n_min // 4))
        self.season = self._season(n_min)
        self.lags, self.windows = lags_for(n_min - self.n_test, self.season)
        self.scales = np.asarray(
            [series_scale(v[: len(v) - self.n_test]) for v in self.panel.values], dtype=float
        )
        self._describe_setup()
        self.table = build_table(self.panel, self.scales, self.lags, self.windows, self.n_test)
        self.folds = build_folds(
            self.panel, self.table, self.scales, self.lags, self.windows, self.n_test
        )
        self.leaderboard: list[LeaderboardEntry] = []
        self.best: Best | None = None
        self.stopped = "converged"  # every candidate tried

    def _season(self, n_min: int) -> int:
        season = season_length(self.panel.freq)
        if season >= (n_min - self.n_test) // 2:
            self.plan.decide(
                "forecast",
                "seasonal naive with season 1 (the last value)",
                f"the series are too short for a season of {season} steps",
            )
            return 1
        return season

    def _describe_setup(self) -> None:
        plan, panel = self.plan, self.panel
        plan.decide(
            "forecast",
            f"{len(panel.ids)} series" if self.several else "one series",
            f"one global model over every {panel.column}, series id as a feature, each series "
            "divided by its mean absolute value"
            if self.several
            else "no group_column",
        )
        plan.decide(
            "forecast",
            f"lags {self.lags}, rolling windows {self.windows}, season {self.season}, holdout "
            f"{self.n_test} points" + (" per series" if self.several else ""),
            "from the shortest series' length, the horizon and the frequency",
        )

    def run(self) -> AutoMLResult:
        best = self.search()
        plan = self.plan
        plan.decide(
            "model",
            best.candidate.name,
            f"best {plan.metric} of recursive {self.n_test}-step forecasts from "
            f"{len(self.folds)} origins in time order",
        )
        holdout, frame = self.holdout(best)
        final = self.refit(best.candidate)
        return self.result(best, final, holdout, frame)

    # -- search -----------------------------------------------------------------------------
    def search(self) -> Best:
        """Every candidate in turn until the search's share of the budget is spent."""
        plan = self.plan
        trials = with_blend(
            candidates(plan, len(self.panel.ids), self.season),
            self.leaderboard,
            plan.metric,
            self.start + BLEND_AT * self.total,
        )
        search_end = self.start + SEARCH_SHARE * self.total
        for candidate in trials:
            if self.reporter.cancelled():
                plan.decide("search", "stopped early", "the job was cancelled")
                self.stopped = "cancelled"
                break
            if self.best is not None and time.monotonic() > search_end:
                plan.decide(
                    "search",
                    f"stopped after {len(self.leaderboard)} candidates",
                    "the search's share of the time budget is spent",
                )
                self.stopped = "time"
                break
            if not self.evaluate(candidate):
                self.stopped = "time"  # out of time within the folds
                break
        if self.best is None:
            if self.stopped == "cancelled":
                raise TrainingCancelled
            raise InternalError("the forecast search ended before its first candidate")
        return self.best

    def evaluate(self, candidate: Candidate) -> bool:
        """Score ``candidate`` on every fold; publish it if it is the best so far.

        False when the deadline cut its folds short: a partial score would not compare fairly.
        """
        plan = self.plan
        began = time.monotonic()
        may_skip = self.best is not None  # the first candidate must finish
        scores = [
            v
            for v in parallel_map(
                lambda fold: self.fold_score(candidate, fold, may_skip), self.folds
            )
            if v is not None
        ]
        if len(scores) < len(self.folds):
            return False
        mean = float(np.mean(scores))
        self.leaderboard.append(
            LeaderboardEntry(
                name=candidate.name,
                family=candidate.family,
                params=candidate.params,
                cv_mean=mean,
                cv_std=float(np.std(scores)),
                fit_time_s=round(time.monotonic() - began, 3),
            )
        )
        self.reporter.event(
            f"{candidate.name}: {plan.metric} {mean:.4f} ({self.n_test}-step forecasts)",
            progress=min(
                0.85, 0.05 + 0.8 * (time.monotonic() - self.start) / (SEARCH_SHARE * self.total)
            ),
        )
        if self.best is None or utility(plan.metric, mean) > utility(plan.metric, self.best.cv):
            self.keep(candidate, mean)
        return True

    def fold_score(self, candidate: Candidate, fold: Fold, may_skip: bool) -> float | None:
        """The candidate's error forecasting one fold; None when it is too late to start."""
        from sklearn.base import clone

        if may_skip and time.monotonic() > self.end - 0.15 * self.total:
            return None
        X, y = self.table.features, self.table.y
        with threadpool_limits(limits=1):
            fitted = clone(candidate.model).fit(X.iloc[fold.train], y[fold.train])
            predicted = (
                recursive_forecast(
                    fitted,
                    fold.tails,
                    fold.positions,
                    fold.future,
                    self.lags,
                    self.windows,
                    fold.codes if self.several else None,
                )
                * fold.scales[:, None]
            )
        known = ~np.isnan(fold.actual)
        return score(self.plan.metric, fold.actual[known], predicted[known], MetricContext())

    def keep(self, candidate: Candidate, cv: float) -> None:
        """The best so far: fitted on the training part and published."""
        from sklearn.base import clone

        rows = np.flatnonzero(self.table.trainable)
        with threadpool_limits(limits=1):
            on_train = clone(candidate.model).fit(
                self.table.features.iloc[rows], self.table.y[rows]
            )
        self.best = Best(cv, candidate, on_train)
        self.reporter.publish(
            self.forecast_model(on_train, cut=self.n_test),
            PublishedModel(
                name=candidate.name,
                task="forecast",
                metric=self.plan.metric,
                score=cv,
                features=self.features(),
            ),
        )

    # -- holdout and the final model ----------------------------------------------------------
    def holdout(self, best: Best) -> tuple[dict[str, float], HoldoutFrame]:
        """Recursive forecasts of each series' held-out end by the model fitted without it."""
        plan, n_test = self.plan, self.n_test
        y_test = np.concatenate([v[len(v) - n_test :] for v in self.panel.values])
        forecast = self.forecast_model(best.on_train, cut=n_test).forecast(n_test)
        predicted = forecast["forecast"].to_numpy()
        holdout = {plan.metric: score(plan.metric, y_test, predicted, MetricContext())}
        holdout.update(companions("regression", y_test, predicted, MetricContext()))
        self.compare_with_seasonal_naive(best, holdout, y_test)
        self.reporter.event(
            f"Holdout (recursive, {n_test} steps) {plan.metric}: {holdout[plan.metric]:.4f}",
            progress=0.9,
        )
        label = plan.target or "series"
        frame = holdout_frame(self.panel, self.features(), label, n_test, y_test, predicted)
        return holdout, frame

    def compare_with_seasonal_naive(
        self, best: Best, holdout: dict[str, float], y_test: np.ndarray
    ) -> None:
        """A decision saying how much the chosen model beats the seasonal-naive yardstick."""
        plan, metric, season = self.plan, self.plan.metric, self.season
        naive = next((e for e in self.leaderboard if e.family == "seasonal_naive"), None)
        if naive is None:
            return
        naive_model = self.forecast_model(SeasonalNaive(season), cut=self.n_test)
        naive_forecast = naive_model.forecast(self.n_test)["forecast"].to_numpy()
        naive_holdout = score(metric, y_test, naive_forecast, MetricContext())
        holdout[f"seasonal_naive_{metric}"] = naive_holdout
        chosen = best.candidate
        if chosen.family == "seasonal_naive":
            plan.decide(
                "baseline",
                "seasonal naive is the model",
                f"no candidate beat the value one season ({season} steps) ago on {metric} over "
                "the folds",
            )
            return
        cv = next(e.cv_mean for e in self.leaderboard if e.name == chosen.name)
        gain = utility(metric, cv) - utility(metric, naive.cv_mean)
        relative = gain / abs(naive.cv_mean) * 100 if naive.cv_mean else float("nan")
        held_gain = utility(metric, holdout[metric]) - utility(metric, naive_holdout)
        held_relative = held_gain / abs(naive_holdout) * 100 if naive_holdout else float("nan")
        verdict = "beats" if held_gain > 0 else "does not beat"
        plan.decide(
            "baseline",
            f"{chosen.name} {verdict} seasonal naive (season {season}) on the holdout: "
            f"{metric} {holdout[metric]:.4g} vs {naive_holdout:.4g} ({held_relative:+.1f}%)",
            f"{metric} over the folds {cv:.4g} vs {naive.cv_mean:.4g} ({relative:+.1f}%); "
            "positive percentages mean better than the yardstick",
        )

    def refit(self, chosen: Candidate) -> Any:
        """The chosen model fitted on every row that has its lags, the holdout included."""
        from sklearn.base import clone

        table = self.table
        everything = np.flatnonzero(table.position >= max(self.lags + self.windows))
        with threadpool_limits(limits=1):
            return clone(chosen.model).fit(table.features.iloc[everything], table.y[everything])

    def result(
        self,
        best: Best,
        final_regressor: Any,
        holdout: dict[str, float],
        frame: HoldoutFrame,
    ) -> AutoMLResult:
        plan, chosen = self.plan, best.candidate
        for entry in self.leaderboard:
            entry.weight = 1.0 if entry.name == chosen.name else 0.0
        importance: list[tuple[str, float]] = []
        raw_importance = getattr(final_regressor, "feature_importances_", None)
        if raw_importance is not None:
            importance = sorted(
                zip(self.table.features.columns, map(float, raw_importance), strict=True),
                key=lambda kv: kv[1],
                reverse=True,
            )
        return AutoMLResult(
            estimator=self.forecast_model(final_regressor),
            task="forecast",
            metric=plan.metric,
            greater_is_better=plan.greater_is_better,
            target=plan.target,
            features=self.features(),
            plan=plan,
            decisions=plan.decisions,
            leaderboard=sorted(
                self.leaderboard, key=lambda e: utility(plan.metric, e.cv_mean), reverse=True
            ),
            cv_mean=best.cv,
            cv_std=next(e.cv_std for e in self.leaderboard if e.name == chosen.name),
            holdout=holdout,
            refit=True,  # the holdout was forecast first; the model then learns every point
            selection=f"the best of {len(self.leaderboard)} candidates by {plan.metric} of "
            "recursive forecasts from several origins in time order; score is the forecast of "
            "the held-out last points, which no choice saw",
            feature_importance=importance,
            holdout_frame=frame,
            dropped_columns=plan.dropped,
            seed=plan.seed,
            search_stopped=self.stopped,
            elapsed_s=round(time.monotonic() - self.start, 3),
            model_name=chosen.name,
        )

    # -- what the model and the plots are made of -------------------------------------------
    def forecast_model(self, regressor: Any, cut: int = 0) -> ForecastModel:
        """A ForecastModel over every series' history without its last ``cut`` points."""
        plan, panel = self.plan, self.panel
        if plan.time_column is None:
            raise InternalError("a forecast plan without a time column reached the engine")
        times = [t.iloc[: len(t) - cut] for t in panel.times]
        values = [v[: len(v) - cut] for v in panel.values]
        return ForecastModel(
            time_column=plan.time_column,
            regressor=regressor,
            lags=self.lags,
            windows=self.windows,
            history_times=[s.isoformat() for t in times for s in t],
            history_values=[float(x) for v in values for x in v],
            freq=panel.freq,
            series_column=panel.column,
            series_ids=list(panel.ids) if self.several else None,
            history_series=[sid for sid, v in zip(panel.ids, values, strict=True) for _ in v]
            if self.several
            else None,
            scales=[float(s) for s in self.scales],
        )

    def features(self) -> list[str]:
        """The columns predict needs: the time column, and the series column of a panel."""
        plan, panel = self.plan, self.panel
        if plan.time_column is None:
            raise InternalError("a forecast plan without a time column reached the engine")
        return [plan.time_column, *([panel.column] if panel.column else [])]

"""Binary, multiclass, regression and text classification: the supervised tabular flow.

holdout split → folds → fast baseline (published) → budgeted search (better models published)
→ greedy ensemble on out-of-fold predictions → holdout scores → refit on all rows if time allows.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.training.engine import families as fam
from mltrainer.tools.training.engine.custom import BlendModel
from mltrainer.tools.training.engine.ensemble import greedy_selection
from mltrainer.tools.training.engine.metrics import MetricContext, companions, score, utility
from mltrainer.tools.training.engine.search import (
    Candidate,
    Problem,
    Search,
    fit_pipeline,
    n_workers,
    parallel_map,
    release_memory,
)
from mltrainer.tools.training.engine.validation import cv_splits, holdout_split
from mltrainer.tools.training.planner import TrainingPlan
from mltrainer.tools.training.reporting import Reporter

if TYPE_CHECKING:
    import pandas as pd

    from mltrainer.tools.training.automl import AutoMLResult

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


class _Data:
    """The target encoded, weights, and row positions for the holdout and the folds."""

    def __init__(self, frame: pd.DataFrame, plan: TrainingPlan) -> None:
        import pandas as pd

        assert plan.target is not None
        labelled = frame[frame[plan.target].notna()].reset_index(drop=True)
        self.X = labelled[plan.feature_names]
        raw = labelled[plan.target]
        self.classification = plan.task in ("binary", "multiclass", "text_classification")
        self.labels: np.ndarray | None = None
        if self.classification:
            codes, uniques = pd.factorize(raw, sort=True)
            self.labels = np.asarray(uniques)
            self.y = codes.astype(int)
            names = [str(v) for v in self.labels]
            self.positive_index = (
                names.index(plan.positive_class) if plan.positive_class in names else 1
            )
            self.task = "binary" if len(names) == 2 else "multiclass"
        else:
            self.y = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
            if np.isnan(self.y).any():
                raise InvalidInput(
                    f"Regression target {plan.target!r} has non-numeric values.",
                    next_step="Clean the target column or use a classification task.",
                )
            self.positive_index = 1
            self.task = "regression"
        self.n_classes = len(self.labels) if self.labels is not None else 0
        self.weight = None
        if plan.class_weight == "balanced" and self.classification:
            from sklearn.utils.class_weight import compute_sample_weight

            self.weight = compute_sample_weight("balanced", self.y)
        v = plan.validation
        self.groups = labelled[v.group_column].astype(str).to_numpy() if v.group_column else None
        self.order = None
        if v.time_column:
            stamps = pd.to_datetime(labelled[v.time_column], errors="coerce", format="mixed")
            self.order = np.argsort(stamps.to_numpy(), kind="stable")
        self.train, self.test = holdout_split(
            len(self.y),
            v,
            self.y if self.classification else None,
            self.groups,
            self.order,
            plan.seed,
        )
        self.metric_ctx = MetricContext(
            n_classes=self.n_classes, positive_index=self.positive_index
        )

    def classes(self) -> list[Any] | None:
        return list(self.labels) if self.labels is not None else None


def _problem(data: _Data, plan: TrainingPlan, rows: np.ndarray) -> Problem:
    import pandas as pd

    X = data.X.iloc[rows].reset_index(drop=True)
    y = data.y[rows]
    groups = data.groups[rows] if data.groups is not None else None
    order = None
    if data.order is not None:
        rank = np.empty(len(data.y), dtype=int)
        rank[data.order] = np.arange(len(data.y))
        order = np.argsort(rank[rows], kind="stable")
    splits = cv_splits(plan.validation, y, data.classification, groups, order, plan.seed)
    ctx = fam.FitContext(task=data.task, n_classes=data.n_classes, n_rows=len(rows), seed=plan.seed)
    del pd
    return Problem(
        X=X,
        y=y,
        weight=data.weight[rows] if data.weight is not None else None,
        splits=splits,
        columns=plan.columns,
        ctx=ctx,
        metric=plan.metric,
        metric_ctx=data.metric_ctx,
    )


def _blend(data: _Data, plan: TrainingPlan, members: list[list[Any]], weights: list[float]) -> Any:
    return BlendModel(
        task=data.task,
        features=plan.feature_names,
        members=members,
        weights=weights,
        classes=data.classes(),
        positive_index=data.positive_index,
    )


def fit_tabular(
    frame: pd.DataFrame, plan: TrainingPlan, reporter: Reporter, start: float
) -> AutoMLResult:

    budget = plan.time.total_s
    end = start + budget
    data = _Data(frame, plan)
    search_rows = data.train
    cap = plan.max_search_rows or max(30000, int(budget * 800))
    if len(search_rows) > cap:
        rng = np.random.default_rng(plan.seed)
        search_rows = np.sort(rng.choice(search_rows, size=cap, replace=False))
        plan.decide(
            "search",
            f"search on a sample of {cap} rows",
            f"{len(data.train)} training rows would leave too few trials in the budget",
        )
    problem = _problem(data, plan, search_rows)
    reporter.event(
        f"{len(data.train)} training rows, {len(data.test)} held out, "
        f"{len(problem.splits)} folds ({plan.validation.kind})",
        progress=0.04,
    )

    published = {"utility": -np.inf, "at": 0.0}

    def publish(name: str, estimator: Any, value: float, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - published["at"] < PUBLISH_EVERY_S:
            return
        published.update(utility=utility(plan.metric, value), at=now)
        reporter.publish(
            estimator,
            {
                "name": name,
                "metric": plan.metric,
                "score": value,
                "task": plan.task,
                "features": plan.feature_names,
                "classes": [str(c) for c in data.labels] if data.labels is not None else [],
                "positive_class": plan.positive_class,
            },
        )

    # A fast baseline on the first fold, published at once.
    baseline_family = next(
        (f.name for f in plan.families if f.name in ("hist_gradient_boosting", "linear")),
        plan.families[0].name,
    )
    baseline = _baseline(problem, baseline_family, end, plan)
    if baseline is not None:
        model, value = baseline
        publish(
            f"baseline {baseline_family}", _blend(data, plan, [[model]], [1.0]), value, force=True
        )
        plan.decide("baseline", baseline_family, f"validation {plan.metric} {value:.4f}")
        reporter.event(f"Baseline {baseline_family}: {plan.metric} {value:.4f}", progress=0.08)

    def on_candidate(candidate: Candidate) -> None:
        elapsed = time.monotonic() - start
        reporter.event(
            f"{candidate.family}: {plan.metric} {candidate.cv_mean:.4f} ± {candidate.cv_std:.4f}",
            progress=min(0.85, 0.08 + 0.77 * elapsed / (budget * SEARCH_SHARE)),
        )
        reporter.checkpoint("leaderboard", {"entries": [c.summary() for c in search.candidates]})
        if candidate.models and candidate.utility > published["utility"]:
            publish(
                f"{candidate.family}#{candidate.id}",
                _blend(data, plan, [candidate.models], [1.0]),
                candidate.cv_mean,
            )

    search = Search(
        problem,
        [f.name for f in plan.families],
        plan.seed,
        on_candidate=on_candidate,
        on_event=lambda message: reporter.event(message, level="warning"),
        cancelled=reporter.cancelled,
    )

    def search_deadline() -> float:
        top = sorted(search.candidates, key=lambda c: c.utility, reverse=True)[:3]
        reserve = 0.06 * budget
        if top:
            # the chosen models are fitted twice more: on the training rows, then on all rows
            reserve += _refit_estimate(data, problem, top, len(data.train))
            reserve += _refit_estimate(data, problem, top)
            reserve += 2 * top[0].predict_seconds(len(data.test)) + 0.01 * len(data.test) / 1000
        return min(start + budget * SEARCH_SHARE, end - reserve)

    resumed = reporter.restore("ensemble")
    if resumed and resumed.get("members"):
        configs = [(m["summary"]["family"], m["summary"]["params"]) for m in resumed["members"]]
        plan.decide(
            "resume",
            f"re-evaluate {len(configs)} chosen models, no search",
            "an earlier attempt of this job finished its search",
        )
        search.replay(configs, end - 0.1 * budget)
        stopped = "replayed"
    else:
        stopped = search.run(search_deadline)
        plan.decide("search", f"stopped: {stopped}", STOP_REASONS[stopped])
    for family, reason in search.dropped.items():
        plan.decide("search", f"drop {family}", reason)
    if not search.candidates:
        if baseline is not None:
            plan.decide("search", "keep the baseline", "no candidate finished in time")
            model, value = baseline
            final = _blend(data, plan, [[model]], [1.0])
            return _result(
                data,
                plan,
                final,
                [],
                [],
                _holdout(data, plan, final, reporter),
                (value, 0.0),
                start,
                reporter,
                end,
                stopped,
            )
        raise InvalidInput(
            "No model could be trained in the time budget.",
            next_step="Raise time_budget_s or allow more model families.",
        )

    pool = sorted(search.candidates, key=lambda c: c.utility, reverse=True)[:POOL_SIZE]
    weights, blend_utility = greedy_selection([c.oof for c in pool], problem.oof_utility)
    best = pool[0]
    if blend_utility > best.utility + 1e-9 and sum(w > 0 for w in weights) > 1:
        plan.decide(
            "ensemble",
            f"blend of {sum(w > 0 for w in weights)} models",
            f"out-of-fold {plan.metric} {_metric_value(plan.metric, blend_utility):.4f} "
            f"vs best single {_metric_value(plan.metric, best.utility):.4f}",
        )
    else:
        weights = [1.0] + [0.0] * (len(pool) - 1)
        plan.decide(
            "ensemble",
            f"single model {best.family}#{best.id}",
            "no blend beat the best single model out of fold",
        )
    members = [(c, w) for c, w in zip(pool, weights, strict=True) if w > 0]
    reporter.checkpoint(
        "ensemble", {"members": [{"summary": c.summary(), "weight": w} for c, w in members]}
    )
    members, trained, holdout_parts = _fit_chosen(
        data, plan, problem, search, members, end, reporter, publish
    )
    final = trained
    if not reporter.cancelled():
        refitted = _refit(data, plan, problem, members, end, reporter)
        if refitted is not None:
            final = refitted
            del trained
    release_memory(collect=True)
    blend_oof: np.ndarray = np.sum([w * c.oof for c, w in members], axis=0)
    fold_scores = [
        score(plan.metric, problem.y[valid], blend_oof[valid], problem.metric_ctx)
        for _, valid in problem.splits
    ]
    predict_cost = sum(c.predict_seconds(1) for c, _ in members) * len(data.test)
    return _result(
        data,
        plan,
        final,
        search.candidates,
        members,
        holdout_parts,
        (float(np.mean(fold_scores)), float(np.std(fold_scores))),
        start,
        reporter,
        # importance may use a little of the 10% the budget promise allows beyond the budget
        end + 0.04 * budget - predict_cost * min(1.0, 200 / max(1, len(data.test))),
        stopped,
    )


def _fit_chosen(
    data: _Data,
    plan: TrainingPlan,
    problem: Problem,
    search: Search,
    members: list[tuple[Candidate, float]],
    end: float,
    reporter: Reporter,
    publish: Any,
) -> tuple[list[tuple[Candidate, float]], Any, tuple[dict[str, float], dict[str, Any]]]:
    """The chosen models fitted once on the training rows and scored on the holdout.

    Fold models are not kept (memory): each member is fitted again, once, on every training row.
    When that would not finish in time, the best candidate whose first fold model was kept is
    used as it is.
    """
    budget = plan.time.total_s
    fallback = next(
        (c for c in sorted(search.candidates, key=lambda c: -c.utility) if c.models), None
    )
    options = [members]
    if len(members) > 1:
        options.append([(members[0][0], 1.0)] if members[0][0].models is None else [])
    for option in options:
        if not option:
            continue
        estimate = _refit_estimate(data, problem, [c for c, _ in option], len(data.train))
        if fallback is None or estimate <= end - time.monotonic() - 0.03 * budget:
            if option is not members:
                plan.decide(
                    "ensemble",
                    f"single model {option[0][0].family}#{option[0][0].id}",
                    f"the blend would take about {estimate:.1f}s to fit on the training rows",
                )
            models = _fit_members(data, plan, problem, option, data.train, end)
            chosen = _blend(data, plan, models, [w for _, w in option])
            break
    else:
        assert fallback is not None
        plan.decide(
            "ensemble",
            f"{fallback.family}#{fallback.id} as fitted on its first fold",
            "no time to fit the chosen models on all training rows",
        )
        option = [(fallback, 1.0)]
        chosen = _blend(data, plan, [fallback.models or []], [1.0])
    if not reporter.cancelled():
        publish(
            "ensemble" if len(option) > 1 else f"{option[0][0].family}#{option[0][0].id}",
            chosen,
            _metric_value(plan.metric, max(c.utility for c, _ in option)),
            force=True,
        )
    for candidate in search.candidates:  # nothing needs the fold models from here on
        candidate.models = None
    release_memory(collect=True)
    return option, chosen, _holdout(data, plan, chosen, reporter)


def _fit_members(
    data: _Data,
    plan: TrainingPlan,
    problem: Problem,
    members: list[tuple[Candidate, float]],
    rows: np.ndarray,
    end: float,
) -> list[list[Any]]:
    """Each member fitted once on ``rows`` of the labelled data, one per core."""
    X = data.X.iloc[rows]
    y = data.y[rows]
    weight = data.weight[rows] if data.weight is not None else None

    def fit(member: tuple[Candidate, float]) -> list[Any]:
        candidate = member[0]
        params = fam.refit_params(candidate.family, candidate.params, candidate.facts)
        with threadpool_limits(limits=1):
            model, _ = fit_pipeline(problem, candidate.family, params, X, y, weight, None, end)
        release_memory()
        return [model]

    return parallel_map(fit, members)


def _metric_value(metric: str, value_utility: float) -> float:
    return value_utility if utility(metric, 1.0) == 1.0 else -value_utility


def _baseline(
    problem: Problem, family: str, end: float, plan: TrainingPlan
) -> tuple[Any, float] | None:
    """A quick model on the first fold; on failure, retried once smaller and simpler."""
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
                    end,
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


def _refit_estimate(
    data: _Data, problem: Problem, members: list[Candidate], n_rows: int | None = None
) -> float:
    """Seconds to fit these candidates on ``n_rows`` rows (default: all), in parallel, from their
    fold times (which include a prediction of the validation rows)."""
    fold_rows = float(np.mean([len(tr) for tr, _ in problem.splits]))
    scale = (n_rows or len(data.y)) / fold_rows * 1.3
    per_model = sorted((c.fold_seconds * scale for c in members), reverse=True)
    workers = n_workers()
    return max(per_model[0] if per_model else 0.0, sum(per_model) / workers)


def _refit(
    data: _Data,
    plan: TrainingPlan,
    problem: Problem,
    members: list[tuple[Candidate, float]],
    end: float,
    reporter: Reporter,
) -> Any | None:
    """Each member refitted once on every labelled row (train + holdout), if it fits in time."""
    estimate = _refit_estimate(data, problem, [c for c, _ in members])
    remaining = end - time.monotonic()
    if estimate > remaining - 0.04 * plan.time.total_s or len(data.test) == 0:
        plan.decide(
            "refit",
            "keep the models fitted on the training rows",
            f"no rows were held out, or a refit on all rows would take about {estimate:.1f}s, {remaining:.1f}s remain",
        )
        return None
    reporter.event("Refitting the chosen models on all rows", progress=0.9)
    refitted = _fit_members(data, plan, problem, members, np.arange(len(data.y)), end)
    if reporter.cancelled():
        return None
    plan.decide(
        "refit",
        "refit on all labelled rows",
        "the holdout was scored first; the final model learns from every row",
    )
    return _blend(data, plan, refitted, [w for _, w in members])


def _holdout(
    data: _Data, plan: TrainingPlan, model: Any, reporter: Reporter
) -> tuple[dict[str, float], dict[str, Any]]:
    """Scores on the held-out rows, which no fitted model has seen, and what D2's plots need."""
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
    reporter.event(f"Holdout {plan.metric}: {holdout[plan.metric]:.4f}", progress=0.9)
    y_labels = data.labels[y_test] if data.labels is not None else y_test
    return holdout, {"X_test": X_test, "y_test": y_labels, "y_pred": y_pred, "proba": proba}


def _result(
    data: _Data,
    plan: TrainingPlan,
    final: Any,
    candidates: list[Candidate],
    members: list[tuple[Candidate, float]],
    holdout_parts: tuple[dict[str, float], dict[str, Any]],
    cv: tuple[float, float],
    start: float,
    reporter: Reporter,
    end: float,
    stopped: str,
) -> AutoMLResult:
    # Imported here: automl imports this module when it fits a tabular task.
    from mltrainer.tools.training.automl import AutoMLResult, LeaderboardEntry, library_versions

    holdout, holdout_frame = holdout_parts
    weights = {c.id: w for c, w in members}
    leaderboard = sorted(candidates, key=lambda c: c.utility, reverse=True)
    entries = [
        LeaderboardEntry(
            name=f"{c.family}#{c.id}",
            family=c.family,
            params=c.params,
            cv_mean=c.cv_mean,
            cv_std=c.cv_std,
            fit_time_s=round(c.fit_time_s, 3),
            weight=weights.get(c.id, 0.0),
        )
        for c in leaderboard
    ]
    # ``end`` here is the last moment a permutation may start (its cost is subtracted).
    importance = (
        []
        if reporter.cancelled() or time.monotonic() > end
        else _importance(final, data.X.iloc[data.test], data.y[data.test], plan, data, end)
    )
    return AutoMLResult(
        estimator=final,
        task=plan.task,
        metric=plan.metric,
        greater_is_better=plan.greater_is_better,
        target=plan.target,
        features=plan.feature_names,
        classes=[str(c) for c in data.labels] if data.labels is not None else [],
        positive_class=plan.positive_class,
        plan=plan,
        decisions=plan.decisions,
        leaderboard=entries,
        cv_mean=cv[0],
        cv_std=cv[1],
        holdout=holdout,
        feature_importance=importance,
        holdout_frame=holdout_frame,
        dropped_columns=plan.dropped,
        seed=plan.seed,
        library_versions=library_versions(),
        elapsed_s=round(time.monotonic() - start, 3),
        search_stopped=stopped,
        model_name="ensemble"
        if len(members) > 1
        else (f"{members[0][0].family}" if members else "baseline"),
    )


def _importance(
    model: Any, X: pd.DataFrame, y: np.ndarray, plan: TrainingPlan, data: _Data, end: float
) -> list[tuple[str, float]]:
    """Permutation importance on (up to 200) holdout rows, for as many columns as time allows."""
    rng = np.random.default_rng(plan.seed)
    if len(X) > 200:
        rows = rng.choice(len(X), size=200, replace=False)
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

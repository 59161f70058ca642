"""The planner: a deterministic agent that turns data + request into a typed TrainingPlan.

It needs no LLM and no network. Every choice it makes is written to ``decisions`` with its
reason, so a caller can see why a column was dropped or a family left out, and steer next time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.profiling.judge import Verdict, judge
from mltrainer.tools.training.engine import families
from mltrainer.tools.training.engine.metrics import greater_is_better, resolve_metric
from mltrainer.tools.training.plan import (
    ColumnPlan,
    ConcreteTask,
    Decision,
    FamilyPlan,
    TimeAllocation,
    TrainingPlan,
    ValidationPlan,
)
from mltrainer.tools.training.planner_columns import (
    Decide,
    plan_columns,
    rare_and_skewed,
    time_features,
)
from mltrainer.tools.training.request import DEEP_TASKS, TrainRequest

if TYPE_CHECKING:
    import pandas as pd

HEADLINE_KINDS = ("time_drift", "rare_classes", "skewed_target")


def _infer_task(request: TrainRequest, verdict: Verdict, decide: Decide) -> ConcreteTask:
    """The caller's task, or the judge's: the task ``profile_dataset`` reports for this target."""
    if request.task in DEEP_TASKS:  # train_model sends these to tools/jobs/deep.py
        raise InvalidInput(
            f"task={request.task!r} fine-tunes a pretrained network; the tabular engine "
            "cannot train it.",
            next_step="Call train_model with this task and a GPU runtime (runtime='modal').",
        )
    if request.task != "auto":
        decide("task", request.task, "given by the caller")
        return cast(ConcreteTask, request.task)
    if request.target is None:
        decide("task", "clustering", "no target")
        return "clustering"
    if request.horizon and request.time_column:
        decide("task", "forecast", "a horizon and a time column were given")
        return "forecast"
    if verdict.target is None:
        raise InvalidInput(
            f"The target {request.target!r} could not be judged.", next_step="Pass task."
        )
    decide("task", verdict.target.task, f"the profile's verdict: {verdict.target.reason}")
    return verdict.target.task


def _time_axis(
    request: TrainRequest, task: ConcreteTask, verdict: Verdict, decide: Decide
) -> str | None:
    """The date column rows are ordered by for validation: the caller's, or one the target
    drifts along (with the evidence), unless the caller chose another validation."""
    if task in ("forecast", "clustering"):
        return None
    if request.time_column:
        return request.time_column
    drift = verdict.drift
    if drift is None or not drift.drifts:
        return None
    if request.validation != "auto" or request.group_column:
        decide(
            "validation",
            f"no time order on {drift.column}",
            f"the target drifts along it ({drift.reason}), but the caller chose the validation",
        )
        return None
    decide(
        "validation",
        f"time-ordered on {drift.column}",
        f"{drift.reason}: a random split would score the model on the periods it learned",
    )
    return drift.column


def _validation(
    request: TrainRequest,
    task: ConcreteTask,
    n_rows: int,
    time_axis: str | None,
    plan_decide: Decide,
) -> ValidationPlan:
    test_fraction = min(0.2, max(0.1, 2500 / max(n_rows, 1)))
    kind = request.validation
    time_column = request.time_column if task == "forecast" else time_axis
    if kind == "auto":
        if task == "forecast":  # a group column there names the series, not a fold grouping
            kind = "time_series"
        elif request.group_column:
            kind = "group_kfold"
        elif time_column:
            kind = "time_series"
        elif n_rows < 800 and task != "clustering" and request.time_budget_s >= 30:
            kind = "repeated_kfold"
        elif task in ("binary", "multiclass", "text_classification"):
            kind = "stratified_kfold"
        else:
            kind = "kfold"
        plan_decide("validation", kind, "chosen from the data size, task, and group/time columns")
    if kind == "group_kfold" and not request.group_column:
        raise InvalidInput(
            "validation='group_kfold' needs a group column.", next_step="Pass group_column."
        )
    if kind == "time_series" and not time_column:
        raise InvalidInput(
            "validation='time_series' needs a time column.", next_step="Pass time_column."
        )
    n_splits = 5 if n_rows * (1 - test_fraction) <= 15000 else 3
    n_repeats = 2 if kind == "repeated_kfold" else 1
    if kind == "holdout":
        n_splits = 1
    return ValidationPlan(
        kind=kind,
        n_splits=n_splits,
        n_repeats=n_repeats,
        test_fraction=round(test_fraction, 4),
        group_column=request.group_column,
        time_column=time_column if kind == "time_series" else None,
    )


def _families(
    request: TrainRequest,
    task: ConcreteTask,
    n_rows: int,
    columns: list[ColumnPlan],
    plan: TrainingPlan,
) -> list[FamilyPlan]:
    if task == "clustering":
        return [FamilyPlan(name="kmeans", search_space={"n_clusters": "2..10 by silhouette"})]
    wanted = families.default_families(task, n_rows, [c.kind for c in columns])
    if task == "forecast":
        wanted = ["linear", "hist_gradient_boosting"]
    if request.models:
        allowed = []
        for name in request.models:
            canonical = families.canonical_name(name)
            if canonical is None:
                raise InvalidInput(
                    f"Unknown model family {name!r}.",
                    next_step=f"Use some of: {', '.join(families.FAMILIES)}.",
                )
            allowed.append(canonical)
        wanted = [f for f in families.FAMILIES if f in allowed]
        if task == "forecast":
            wanted = [f for f in wanted if f in ("linear", "hist_gradient_boosting")]
            if not wanted:
                raise InvalidInput(
                    "Forecasting supports the linear and hist_gradient_boosting families.",
                    next_step="Change models.",
                )
        plan.decide("families", ", ".join(wanted), "the caller's models allow-list")
    else:
        plan.decide("families", ", ".join(wanted), "defaults for this task and data size")
        if n_rows < families.SMALL_ROWS and task != "forecast" and "xgboost" not in wanted:
            plan.decide(
                "families",
                "no xgboost",
                f"{n_rows} rows: HistGradientBoosting covers boosting at this size with less "
                "memory; name xgboost in models to include it",
            )
    return [FamilyPlan(name=f, search_space=families.describe(f)) for f in wanted]


def _time(budget: float) -> TimeAllocation:
    baseline = min(10.0, 0.1 * budget)
    refit = 0.15 * budget
    ensemble = 0.03 * budget
    return TimeAllocation(
        total_s=budget,
        baseline_s=round(baseline, 2),
        search_s=round(budget - baseline - refit - ensemble - 0.05 * budget, 2),
        ensemble_s=round(ensemble, 2),
        refit_s=round(refit, 2),
    )


def build_plan(
    frame: pd.DataFrame, request: TrainRequest, verdict: Verdict | None = None
) -> TrainingPlan:
    """Read the data, the request and the judge's verdict on the columns (judged here, the same
    way as ``profile_dataset`` does, when not given); decide everything the engine will do."""
    decisions: list[Decision] = []

    def decide(stage: str, decision: str, reason: str) -> None:
        decisions.append(Decision(stage=stage, decision=decision, reason=reason))

    _check_request(frame, request)
    if verdict is None:
        verdict = judge(frame, request.target, seed=request.seed)
    target_name = request.target
    target = frame[target_name] if target_name is not None else None
    task = _infer_task(request, verdict, decide)
    if task == "forecast" and not request.time_column and verdict.time_axis is not None:
        request = request.model_copy(update={"time_column": verdict.time_axis.column})
        decide("time_column", verdict.time_axis.column, "the profile's regular time axis")
    if task == "forecast" and not request.time_column:
        raise InvalidInput("Forecasting needs a time column.", next_step="Pass time_column.")
    n_rows = len(frame) if target is None else int(target.notna().sum())
    classes, positive = _classes(request, task, target, decide)
    metric = resolve_metric(
        request.metric, "binary" if len(classes) == 2 else ("multiclass" if classes else task)
    )
    if request.metric is None:
        decide("metric", metric, "the default for this task")

    time_axis = _time_axis(request, task, verdict, decide)
    skip = {target_name, request.group_column}
    if task == "forecast":
        skip.add(request.time_column)
    columns, dropped, warnings = plan_columns(frame, request, verdict, skip, time_axis, decide)
    if not columns and task != "forecast":
        raise InvalidInput(
            "No usable feature columns are left after dropping identifiers, constants and leaks.",
            next_step="Check exclude_columns (or keep_columns) and the profile warnings.",
        )
    plan = TrainingPlan(
        task=task,
        target=target_name,
        metric=metric,
        greater_is_better=greater_is_better(metric),
        positive_class=positive,
        classes=classes,
        n_rows=n_rows,
        columns=columns,
        dropped=dropped,
        validation=_validation(request, task, n_rows, time_axis, decide),
        families=[],
        time=_time(float(request.time_budget_s)),
        class_weight=request.class_weight,
        time_column=request.time_column,
        horizon=request.horizon,
        seed=request.seed,
        parallel=request.parallel,
        instructions=request.instructions,
        decisions=decisions,
        warnings=_headline(verdict, time_axis) + warnings,
    )
    time_features(plan, verdict)
    rare_and_skewed(plan, target, verdict)
    plan.families = _families(request, task, n_rows, columns, plan)
    _linear_first(plan)
    _forest_first(plan)
    if request.class_weight:
        plan.decide("class_weight", request.class_weight, "the caller asked; sample weights used")
    if request.instructions:
        plan.decide("instructions", "recorded", "free-text instructions are kept in the manifest")
    _memory(frame, request, plan)
    return plan


def _check_request(frame: pd.DataFrame, request: TrainRequest) -> None:
    if frame.empty:
        raise InvalidInput("The dataset has no rows.", next_step="Check the file and its format.")
    target_name = request.target
    if target_name is not None and target_name not in frame.columns:
        raise InvalidInput(
            f"Target column {target_name!r} is not in the dataset.",
            next_step=f"Use one of: {', '.join(map(str, list(frame.columns)[:30]))}.",
        )
    if request.task not in ("auto", "clustering") and target_name is None:
        raise InvalidInput(f"A {request.task} task needs a target.", next_step="Pass target.")
    for name in [request.group_column, request.time_column]:
        if name is not None and name not in frame.columns:
            raise InvalidInput(f"Column {name!r} is not in the dataset.", next_step="Check it.")
    for field in ("exclude_columns", "keep_columns"):
        unknown = [c for c in getattr(request, field) if c not in frame.columns]
        if unknown:
            raise InvalidInput(f"{field} not in the dataset: {unknown}.", next_step="Fix them.")


def _classes(
    request: TrainRequest, task: ConcreteTask, target: pd.Series | None, decide: Decide
) -> tuple[list[str], str | None]:
    """The classes in the engine's order (sorted original values, so probability columns line
    up) and the positive class of a binary task."""
    if task not in ("binary", "multiclass", "text_classification") or target is None:
        return [], None
    import pandas as pd

    _, uniques = pd.factorize(target.dropna(), sort=True)
    classes = [str(v) for v in uniques]
    if len(classes) < 2:
        raise InvalidInput(
            "The target has a single class.", next_step="Choose another target column."
        )
    if task == "binary" and len(classes) != 2:
        raise InvalidInput(
            f"task='binary' but the target has {len(classes)} classes.",
            next_step="Use task='multiclass' or 'auto'.",
        )
    if request.positive_class is not None:
        if request.positive_class not in classes:
            raise InvalidInput(
                f"positive_class {request.positive_class!r} is not a class of the target.",
                next_step=f"Use one of: {', '.join(classes[:20])}.",
            )
        return classes, request.positive_class
    if len(classes) != 2:
        return classes, None
    positive = _default_positive(classes, target)
    decide("positive_class", positive, "the minority class (or the usual '1'/'yes')")
    return classes, positive


def _headline(verdict: Verdict, time_axis: str | None) -> list[str]:
    """The judge's findings worth reading before the scores: dropped leaks, drift acted on,
    rare classes, a heavy-tailed target."""
    out = []
    for warning in verdict.warnings:
        if warning.kind == "leakage" and warning.severity == "high":
            out.append(warning.message)
        elif warning.kind == "time_drift" and warning.column != time_axis:
            continue  # the caller chose the validation: the message would not hold
        elif warning.kind in HEADLINE_KINDS:
            out.append(warning.message)
    return out


def _first(plan: TrainingPlan, family: str, why: str) -> None:
    """``family`` first in the plan (tried, and used as the baseline, first), and why."""
    names = [f.name for f in plan.families]
    if family not in names or names[0] == family:
        return
    plan.families.sort(key=lambda f: f.name != family)
    plan.decide(
        "families", f"{family} first", f"{why}; it is tried (and used as the baseline) first"
    )


def _linear_first(plan: TrainingPlan) -> None:
    """With a time axis, the linear family first: it carries a trend past the last date, which
    trees cannot (they repeat the last level they saw). On a wide table too: a boosted fit
    bins every feature before its first tree (HistGradientBoosting at each fit: 3-4 s for
    2,000 features on 1,000-4,000 rows, one core of a 2-CPU VM, where a logistic regression
    took 0.14 s), which a first model within seconds cannot wait for (#17)."""
    if plan.time_axis is not None:
        _first(plan, "linear", "validation is time-ordered, and this family extrapolates a trend")
    elif len(plan.feature_names) >= families.WIDE_FEATURES:
        why = (
            f"{len(plan.feature_names)} features: a boosted model bins every one before its "
            "first tree, a linear one fits them in a fraction of that"
        )
        _first(plan, "linear", why)


def _forest_first(plan: TrainingPlan) -> None:
    """With many classes and no time axis, extra trees first: a boosting round grows a tree
    per class, while a forest's tree serves every class. On glyphs26 (26 classes) extra trees
    fitted 2,500 rows in 0.5 s for accuracy 0.964; boosting took 5.7 s for 0.93, and at a 15 s
    budget left no time for the search (#17)."""
    many = plan.task == "multiclass" and len(plan.classes) > families.FOREST_CLASSES
    if many and plan.time_axis is None:
        why = (
            f"{len(plan.classes)} classes: a boosting round grows a tree per class, a forest's "
            "tree serves every class"
        )
        _first(plan, "extra_trees", why)


def _default_positive(classes: list[str], target: pd.Series) -> str:
    for usual in ("1", "1.0", "True", "true", "yes", "Yes", "positive", "pos"):
        if usual in classes:
            return usual
    counts = target.astype(str).value_counts()
    return str(counts.index[-1])


def _memory(frame: pd.DataFrame, request: TrainRequest, plan: TrainingPlan) -> None:
    """Cap the rows the search sees so that a family's working set fits max_memory_mb."""
    if request.max_memory_mb is None:
        return
    per_row = max(1.0, frame.memory_usage(deep=True).sum() / max(len(frame), 1))
    budget_bytes = request.max_memory_mb * 1024**2 / 12  # folds, copies, encoders, trees
    rows = int(budget_bytes / per_row)
    if rows < plan.n_rows:
        plan.max_search_rows = max(1000, rows)
        plan.decide(
            "memory",
            f"search on at most {plan.max_search_rows} rows",
            f"max_memory_mb={request.max_memory_mb} and about {per_row:.0f} bytes per row",
        )

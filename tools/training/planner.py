"""The planner: a deterministic agent that turns data + request into a typed TrainingPlan.

It needs no LLM and no network. Every choice it makes is written to ``decisions`` with its
reason, so a caller can see why a column was dropped or a family left out, and steer next time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.training.engine import families
from mltrainer.tools.training.engine.metrics import greater_is_better, resolve_metric
from mltrainer.tools.training.plan import (
    ColumnKind,
    ColumnPlan,
    ColumnWarning,
    ConcreteTask,
    Decision,
    DroppedColumn,
    FamilyPlan,
    TimeAllocation,
    TrainingPlan,
    ValidationPlan,
)
from mltrainer.tools.training.request import TrainRequest

if TYPE_CHECKING:
    import pandas as pd

LOW_CARDINALITY = 32
DROP_WARNINGS = {"leakage", "identifier", "constant"}
# Records one decision: (stage, decision, reason).
Decide = Callable[[str, str, str], None]


def _kind(series: pd.Series) -> tuple[ColumnKind, int]:
    import pandas as pd

    non_null = series.dropna()
    n_unique = int(non_null.nunique())
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return "numeric", n_unique
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime", n_unique
    sample = non_null.astype(str).head(500)
    if len(sample) and sample.str.match(r"^\d{4}-\d{2}-\d{2}").mean() > 0.9:
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
        if parsed.notna().mean() > 0.9:
            return "datetime", n_unique
    words = sample.str.count(r"\s+").mean() if len(sample) else 0.0
    if n_unique > max(LOW_CARDINALITY, 0.2 * len(non_null)) and words >= 3:
        return "text", n_unique
    if n_unique <= LOW_CARDINALITY:
        return "categorical", n_unique
    return "high_cardinality", n_unique


def _looks_like_identifier(name: str, series: pd.Series, kind: str, n_rows: int) -> bool:
    import pandas as pd

    n_unique = series.nunique(dropna=True)
    if n_rows < 20 or n_unique < 0.99 * n_rows or kind == "text":
        return False
    lowered = name.lower()
    named = lowered in {"id", "index", "uuid", "key", "row", "rowid"} or lowered.endswith(
        ("_id", "id", "_key", "uuid")
    )
    if kind in ("categorical", "high_cardinality"):
        return True  # every value distinct: nothing to learn that generalises
    if pd.api.types.is_integer_dtype(series):
        values = series.dropna().to_numpy()
        steps = values[1:] - values[:-1] if len(values) > 1 else values
        return named or bool(len(values) > 1 and (steps == steps[0]).all())
    return named and kind == "numeric" and pd.api.types.is_integer_dtype(series)


def _leaks_target(series: pd.Series, target: pd.Series, task: str) -> bool:
    """A column that (almost) is the target: equal to it, or a near-perfect function of it."""
    import numpy as np
    import pandas as pd

    if series.astype(str).equals(target.astype(str)):
        return True
    if task == "regression" and pd.api.types.is_numeric_dtype(series):
        both = pd.concat([series, target], axis=1).dropna()
        if len(both) > 10 and both.iloc[:, 0].std() > 0 and both.iloc[:, 1].std() > 0:
            return bool(abs(np.corrcoef(both.iloc[:, 0], both.iloc[:, 1])[0, 1]) > 0.999)
        return False
    if task in ("binary", "multiclass", "text_classification"):
        n_unique = series.nunique()
        if n_unique < 2 or n_unique > max(2, len(series) // 5):
            return False
        purity = pd.crosstab(series.fillna("<na>").astype(str), target.astype(str)).max(axis=1)
        return bool(purity.sum() >= len(series) and target.nunique() > 1)
    return False


def _infer_task(request: TrainRequest, target: pd.Series | None) -> ConcreteTask:
    import pandas as pd

    if request.task != "auto":
        return request.task
    if target is None:
        return "clustering"
    if request.horizon and request.time_column:
        return "forecast"
    n_unique = target.nunique()
    if pd.api.types.is_float_dtype(target) and n_unique > 20:
        return "regression"
    many = n_unique > min(50, max(20, int(0.05 * target.notna().sum())))
    if pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target) and many:
        return "regression"
    return "binary" if n_unique == 2 else "multiclass"


def _validation(
    request: TrainRequest, task: ConcreteTask, n_rows: int, plan_decide: Decide
) -> ValidationPlan:
    test_fraction = min(0.2, max(0.1, 2500 / max(n_rows, 1)))
    kind = request.validation
    if kind == "auto":
        if task == "forecast":  # a group column there names the series, not a fold grouping
            kind = "time_series"
        elif request.group_column:
            kind = "group_kfold"
        elif request.time_column:
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
    if kind == "time_series" and not request.time_column:
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
        time_column=request.time_column,
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
    frame: pd.DataFrame, request: TrainRequest, warnings: Sequence[ColumnWarning] = ()
) -> TrainingPlan:
    """Read the data and the request; decide everything the engine will do, with reasons."""
    decisions: list[Decision] = []

    def decide(stage: str, decision: str, reason: str) -> None:
        decisions.append(Decision(stage=stage, decision=decision, reason=reason))

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
    unknown = [c for c in request.exclude_columns if c not in frame.columns]
    if unknown:
        raise InvalidInput(f"exclude_columns not in the dataset: {unknown}.", next_step="Fix them.")

    target = frame[target_name] if target_name is not None else None
    task = _infer_task(request, target)
    decide(
        "task", task, "given by the caller" if request.task != "auto" else "inferred from target"
    )
    if task == "forecast" and not request.time_column:
        raise InvalidInput("Forecasting needs a time column.", next_step="Pass time_column.")
    n_rows = len(frame) if target is None else int(target.notna().sum())

    classes: list[str] = []
    positive: str | None = None
    if task in ("binary", "multiclass", "text_classification") and target is not None:
        import pandas as pd

        # The engine's order (sorted original values), so probability columns line up.
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
            positive = request.positive_class
        elif len(classes) == 2:
            positive = _default_positive(classes, target)
            decide("positive_class", positive, "the minority class (or the usual '1'/'yes')")
    metric = resolve_metric(
        request.metric, "binary" if len(classes) == 2 else ("multiclass" if classes else task)
    )
    if request.metric is None:
        decide("metric", metric, "the default for this task")

    columns, dropped = _plan_columns(frame, request, task, target_name, warnings, decide)
    if not columns and task != "forecast":
        raise InvalidInput(
            "No usable feature columns are left after dropping identifiers, constants and leaks.",
            next_step="Check exclude_columns and the profile warnings.",
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
        validation=_validation(request, task, n_rows, decide),
        families=[],
        time=_time(float(request.time_budget_s)),
        class_weight=request.class_weight,
        time_column=request.time_column,
        horizon=request.horizon,
        seed=request.seed,
        instructions=request.instructions,
        decisions=decisions,
    )
    plan.families = _families(request, task, n_rows, columns, plan)
    if request.class_weight:
        plan.decide("class_weight", request.class_weight, "the caller asked; sample weights used")
    if request.instructions:
        plan.decide("instructions", "recorded", "free-text instructions are kept in the manifest")
    _memory(frame, request, plan)
    return plan


def _default_positive(classes: list[str], target: pd.Series) -> str:
    for usual in ("1", "1.0", "True", "true", "yes", "Yes", "positive", "pos"):
        if usual in classes:
            return usual
    counts = target.astype(str).value_counts()
    return str(counts.index[-1])


def _plan_columns(
    frame: pd.DataFrame,
    request: TrainRequest,
    task: ConcreteTask,
    target_name: str | None,
    warnings: Sequence[ColumnWarning],
    decide: Decide,
) -> tuple[list[ColumnPlan], list[DroppedColumn]]:
    dropped: list[DroppedColumn] = []

    def drop(name: str, reason: str) -> None:
        dropped.append(DroppedColumn(name=name, reason=reason))
        decide("columns", f"drop {name}", reason)

    warned = {w.column: w.kind for w in warnings if w.column and w.kind in DROP_WARNINGS}
    skip = {target_name, request.group_column}
    if task == "forecast":
        skip.add(request.time_column)
    target = frame[target_name] if target_name is not None else None
    labelled = frame if target is None else frame[target.notna()]
    sample = labelled.sample(n=min(len(labelled), 20000), random_state=0)
    columns: list[ColumnPlan] = []
    for name in frame.columns:
        if name in skip:
            continue
        if name in request.exclude_columns:
            drop(name, "excluded by the caller")
            continue
        if name in warned:
            drop(name, f"the profile flagged it as {warned[name]}")
            continue
        series = sample[name]
        kind, n_unique = _kind(series)
        if n_unique <= 1:
            drop(name, "constant (a single value)")
            continue
        if _looks_like_identifier(str(name), series, kind, len(sample)):
            drop(name, "an identifier (a distinct value on every row)")
            continue
        if (
            target is not None
            and task != "forecast"
            and _leaks_target(series, sample[target_name], task)
        ):
            drop(name, "leaks the target (it determines the target almost exactly)")
            continue
        columns.append(
            ColumnPlan(
                name=str(name),
                kind=kind,
                n_unique=n_unique,
                missing_fraction=round(float(series.isna().mean()), 4),
            )
        )
    return columns, dropped


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

"""The labelled rows of a supervised tabular training: encoded target, weights, holdout, folds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mltrainer.state.errors import InternalError, InvalidInput
from mltrainer.tools.training.engine import families as fam
from mltrainer.tools.training.engine.metrics import MetricContext
from mltrainer.tools.training.engine.search import Problem
from mltrainer.tools.training.engine.validation import cv_splits, holdout_split
from mltrainer.tools.training.plan import TrainingPlan

if TYPE_CHECKING:
    import pandas as pd


class TabularData:
    """The target encoded, weights, and row positions for the holdout and the folds."""

    def __init__(self, frame: pd.DataFrame, plan: TrainingPlan) -> None:
        import pandas as pd

        if plan.target is None:
            raise InternalError(f"a {plan.task} plan without a target reached the engine")
        labelled = frame[frame[plan.target].notna()].reset_index(drop=True)
        self.plan = plan
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
        # rows of classes too small to stratify or score: always trained on, never held out
        self.always_train = None
        if plan.rare_classes and self.labels is not None:
            rare = [i for i, label in enumerate(self.labels) if str(label) in plan.rare_classes]
            self.always_train = np.isin(self.y, rare)
        self.train, self.test = holdout_split(
            len(self.y),
            v,
            self.y if self.classification else None,
            self.groups,
            self.order,
            plan.seed,
            self.always_train,
        )
        self.metric_ctx = MetricContext(
            n_classes=self.n_classes, positive_index=self.positive_index
        )

    def classes(self) -> list[Any] | None:
        return list(self.labels) if self.labels is not None else None

    def class_names(self) -> list[str]:
        return [str(c) for c in self.labels] if self.labels is not None else []

    def problem(self, rows: np.ndarray) -> Problem:
        """What candidates are cross-validated on: ``rows`` of the labelled data, in folds."""
        plan = self.plan
        X = self.X.iloc[rows].reset_index(drop=True)
        y = self.y[rows]
        groups = self.groups[rows] if self.groups is not None else None
        order = self.time_order(rows)
        always = self.always_train[rows] if self.always_train is not None else None
        splits = cv_splits(
            plan.validation, y, self.classification, groups, order, plan.seed, always
        )
        ctx = fam.FitContext(
            task=self.task,
            n_classes=self.n_classes,
            n_rows=len(rows),
            seed=plan.seed,
            target_transform=plan.target_transform,
            time_axis=plan.time_axis is not None,
        )
        return Problem(
            X=X,
            y=y,
            weight=self.weight[rows] if self.weight is not None else None,
            splits=splits,
            columns=plan.columns,
            ctx=ctx,
            metric=plan.metric,
            metric_ctx=self.metric_ctx,
            calendar=tuple(plan.calendar),
            ordered=self.order is not None,
        )

    def time_order(self, rows: np.ndarray) -> np.ndarray | None:
        """``rows`` (positions into the labelled rows) in time order, as positions into
        ``rows``; None without a time column."""
        if self.order is None:
            return None
        rank = np.empty(len(self.y), dtype=int)
        rank[self.order] = np.arange(len(self.y))
        return np.argsort(rank[rows], kind="stable")

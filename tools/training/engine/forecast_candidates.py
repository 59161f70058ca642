"""The forecast candidates: a seasonal-naive yardstick, ridge and boosting configurations (each
learning the level or the change from the last value), and a blend of the best of each kind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from mltrainer.tools.training.engine.custom import (
    SERIES_FEATURE,
    ChangeRegressor,
    MeanRegressor,
    SeasonalNaive,
)
from mltrainer.tools.training.engine.metrics import utility
from mltrainer.tools.training.plan import TrainingPlan
from mltrainer.tools.training.results import LeaderboardEntry

MAX_CANDIDATES = 40
MAX_CATEGORIES = 250  # HistGradientBoosting's limit on a categorical feature's values
RIDGE_ALPHAS = (1.0, 10.0, 0.1, 100.0)
HGB_CONFIGS: tuple[dict[str, Any], ...] = (
    {"max_iter": 300, "learning_rate": 0.05, "min_samples_leaf": 5},
    {"max_iter": 150, "learning_rate": 0.1, "max_leaf_nodes": 8, "min_samples_leaf": 10},
    {
        "max_iter": 500,
        "learning_rate": 0.03,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 20,
        "l2_regularization": 1.0,
    },
    {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 3},
)


@dataclass
class Candidate:
    name: str
    family: str
    params: dict[str, Any]
    model: Any


def _ridge(alpha: float, panel: bool) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    if not panel:
        return make_pipeline(numeric, Ridge(alpha))
    encode = ColumnTransformer(
        [("series", OneHotEncoder(handle_unknown="ignore"), [SERIES_FEATURE])], remainder=numeric
    )
    return make_pipeline(encode, Ridge(alpha))


def _hgb(params: dict[str, Any], n_series: int, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    categorical = [SERIES_FEATURE] if 1 < n_series <= MAX_CATEGORIES else None
    return HistGradientBoostingRegressor(
        **params, categorical_features=categorical, random_state=seed
    )


def candidates(plan: TrainingPlan, n_series: int, season: int) -> Iterator[Candidate]:
    """The seasonal-naive yardstick, then ridge and boosting in turn, each learning the level and
    the change from the last value, then sampled boosting configurations."""
    allowed = {f.name for f in plan.families}
    panel = plan.validation.group_column is not None
    yield Candidate("seasonal_naive", "seasonal_naive", {"season": season}, SeasonalNaive(season))
    if season > 1:
        yield Candidate("naive", "naive", {"season": 1}, SeasonalNaive(1))
    grid: list[tuple[str, dict[str, Any], Any]] = []
    ridges = [a for a in RIDGE_ALPHAS if "linear" in allowed]
    boosts = list(HGB_CONFIGS) if "hist_gradient_boosting" in allowed else []
    for i in range(max(len(ridges), len(boosts))):
        if i < len(ridges):
            grid.append(("linear", {"alpha": ridges[i]}, _ridge(ridges[i], panel)))
        if i < len(boosts):
            grid.append(("hist_gradient_boosting", boosts[i], _hgb(boosts[i], n_series, plan.seed)))
    rng = np.random.default_rng(plan.seed)
    while boosts and len(grid) < MAX_CANDIDATES:
        params = {
            "max_iter": int(rng.choice([100, 200, 400, 800])),
            "learning_rate": float(rng.choice([0.02, 0.05, 0.1, 0.2])),
            "max_leaf_nodes": int(rng.choice([7, 15, 31, 63])),
            "min_samples_leaf": int(rng.choice([3, 5, 10, 20, 40])),
            "l2_regularization": float(rng.choice([0.0, 0.1, 1.0, 10.0])),
        }
        grid.append(("hist_gradient_boosting", params, _hgb(params, n_series, plan.seed)))
    counts: dict[str, int] = {}
    for family, params, model in grid:
        for target in ("level", "change"):
            number = counts[family] = counts.get(family, -1) + 1
            yield Candidate(
                f"{family}#{number}",
                family,
                {**params, "target": target},
                model if target == "level" else ChangeRegressor(model),
            )


def with_blend(
    candidates: Iterator[Candidate],
    leaderboard: list[LeaderboardEntry],
    metric: str,
    at: float,
) -> Iterator[Candidate]:
    """The candidates, with a blend of the best three of different kinds tried once ``at`` has
    passed (or at the end)."""
    known: dict[str, Candidate] = {}
    blended = False
    for candidate in candidates:
        if not blended and time.monotonic() > at:
            blended = True
            yield from _blend(leaderboard, known, metric)
        known[candidate.name] = candidate
        yield candidate
    if not blended:
        yield from _blend(leaderboard, known, metric)


def _blend(
    leaderboard: list[LeaderboardEntry], known: dict[str, Candidate], metric: str
) -> list[Candidate]:
    learned = [e for e in leaderboard if e.family in ("linear", "hist_gradient_boosting")]
    ranked = sorted(learned, key=lambda e: utility(metric, e.cv_mean), reverse=True)
    top: list[LeaderboardEntry] = []
    for entry in ranked:  # the best of each kind (family, level or change) for diversity
        kinds = {(e.family, e.params.get("target")) for e in top}
        if (entry.family, entry.params.get("target")) not in kinds:
            top.append(entry)
    top = top[:3]
    if len(top) < 2:
        return []
    names = [e.name for e in top]
    model = MeanRegressor([known[name].model for name in names])
    return [Candidate("blend", "blend", {"members": names}, model)]

"""Model families: their preprocessing, default configurations, search spaces and estimators.

A family is a name, a preprocessing style ("tree" or "linear"), a short portfolio of
configurations known to work well (tried before the TPE search), and an Optuna search space.
How a family's model is fitted (early stopping, chunks, deadlines) is in fitting.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# The names are declared with the rest of the request's vocabulary, so that the server lists
# them without importing the engine.
from mltrainer.tools.training.request import FAMILY_ALIASES as ALIASES
from mltrainer.tools.training.request import MODEL_FAMILIES as FAMILIES


def canonical_name(name: str) -> str | None:
    key = name.strip().lower().replace(" ", "_")
    key = ALIASES.get(key, key)
    return key if key in FAMILIES else None


# The families that get transformed-target candidates when the target is heavy-tailed.
TRANSFORMED = ("hist_gradient_boosting", "xgboost", "linear")
# The families that, with a time axis, also try elapsed time as a feature (the linear family
# always has it: a trend); a tree reads a later date like the latest one it saw.
ELAPSED = ("hist_gradient_boosting", "xgboost", "extra_trees", "random_forest")
# Flags of a configuration that are for the preprocessing and the fitting, not the estimator.
FLAGS = ("target_transform", "elapsed")

# Below this many rows, HistGradientBoosting covers boosting: XGBoost costs ~40 MB more memory
# (its library and per-booster state) and has not been chosen on such data in the benchmark.
SMALL_ROWS = 1000


def default_families(task: str, n_rows: int, kinds: list[str]) -> list[str]:
    """The families a plan tries, in the order the search first tries them. XGBoost comes
    before HistGradientBoosting: its first configuration cross-validated 1.2-3.7x faster on 10 of
    the 11 benchmark sets it runs on, at about the same score (chile_vote 0.72 s against 2.25 s,
    digits 1.8 s against 6.7 s; 1 Dec), so a short budget's search gets a second family instead
    of one slow candidate. The baseline stays HistGradientBoosting (tabular_start.py)."""
    if task == "text_classification" or (kinds and all(k == "text" for k in kinds)):
        return ["linear", "xgboost", "hist_gradient_boosting"]
    names = ["xgboost", "hist_gradient_boosting", "linear", "extra_trees", "random_forest"]
    if n_rows < SMALL_ROWS:
        names.remove("xgboost")
    if n_rows <= 20000 and "text" not in kinds:
        names.append("knn")
    return names


@dataclass(frozen=True)
class FitContext:
    task: str  # binary | multiclass | regression
    n_classes: int
    n_rows: int
    seed: int
    n_jobs: int = 1  # one thread per model; folds run in parallel instead
    categorical_positions: tuple[int, ...] = ()
    target_transform: bool = False  # a heavy-tailed target: transformed candidates are tried
    time_axis: bool = False  # rows are time-ordered: trees also try elapsed time (a regime)

    @property
    def classification(self) -> bool:
        return self.task in ("binary", "multiclass")


def _space(name: str) -> dict[str, Any]:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if name == "xgboost":
        return {
            "learning_rate": FloatDistribution(0.02, 0.3, log=True),
            "max_depth": IntDistribution(2, 8),  # deeper multiclass trees cost 40+ MB to grow
            "min_child_weight": FloatDistribution(0.5, 30.0, log=True),
            "subsample": FloatDistribution(0.5, 1.0),
            "colsample_bytree": FloatDistribution(0.3, 1.0),
            "reg_lambda": FloatDistribution(1e-3, 30.0, log=True),
            "reg_alpha": FloatDistribution(1e-3, 10.0, log=True),
        }
    if name == "hist_gradient_boosting":
        return {
            "learning_rate": FloatDistribution(0.01, 0.3, log=True),
            "max_leaf_nodes": IntDistribution(8, 256, log=True),
            "min_samples_leaf": IntDistribution(3, 200, log=True),
            "l2_regularization": FloatDistribution(1e-3, 10.0, log=True),
            "max_features": FloatDistribution(0.4, 1.0),
        }
    if name in ("random_forest", "extra_trees"):
        return {
            "max_features": FloatDistribution(0.1, 1.0),
            "min_samples_leaf": IntDistribution(1, 20, log=True),
        }
    if name == "linear":
        return {"C": FloatDistribution(1e-3, 100.0, log=True)}
    if name == "knn":
        return {
            "n_neighbors": IntDistribution(3, 60, log=True),
            "weights": CategoricalDistribution(["uniform", "distance"]),
        }
    raise KeyError(name)


def _flags(name: str, ctx: FitContext | None) -> list[str]:
    """The flags (FLAGS) this family's candidates try both ways on this data."""
    if ctx is None:
        return []
    found = []
    if ctx.target_transform and name in TRANSFORMED:
        found.append("target_transform")
    if ctx.time_axis and name in ELAPSED:
        found.append("elapsed")
    return found


def search_space(name: str, ctx: FitContext | None = None) -> dict[str, Any]:
    space = _space(name)
    flags = _flags(name, ctx)
    if flags:
        from optuna.distributions import CategoricalDistribution

        for flag in flags:
            space[flag] = CategoricalDistribution([False, True])
    return space


def describe(name: str) -> dict[str, str]:
    if name == "kmeans":
        return {"n_clusters": "2..10 by silhouette"}
    out = {}
    for key, dist in _space(name).items():
        if hasattr(dist, "choices"):
            out[key] = "one of " + ", ".join(map(str, dist.choices))
        else:
            out[key] = f"{dist.low}..{dist.high}" + (" (log)" if dist.log else "")
    return out


def portfolio(name: str, ctx: FitContext) -> list[dict[str, Any]]:
    """Configurations tried first, strongest-on-average first. Each flag this data calls for
    (a transformed target, elapsed time) is tried on the first configuration too: second, or
    first for a transformed linear model (cheap, and the one a log scale helps most), so that
    the search compares both early."""
    configs = _portfolio(name, ctx)
    flags = _flags(name, ctx)
    configs = [{**c, **dict.fromkeys(flags, False)} for c in configs]
    for flag in flags:
        where = 0 if (name == "linear" and flag == "target_transform") else 1
        configs.insert(where, {**configs[0], flag: True})
    return configs


def _portfolio(name: str, ctx: FitContext) -> list[dict[str, Any]]:
    if name == "xgboost":
        return [
            {
                "learning_rate": 0.1,
                "max_depth": 6,
                "min_child_weight": 1.0,
                "subsample": 0.8,
                "colsample_bytree": 0.8,
                "reg_lambda": 1.0,
                "reg_alpha": 0.001,
            },
            {
                "learning_rate": 0.05,
                "max_depth": 4,
                "min_child_weight": 2.0,
                "subsample": 0.9,
                "colsample_bytree": 0.6,
                "reg_lambda": 2.0,
                "reg_alpha": 0.01,
            },
            {
                "learning_rate": 0.03,
                "max_depth": 8,
                "min_child_weight": 3.0,
                "subsample": 0.7,
                "colsample_bytree": 0.5,
                "reg_lambda": 5.0,
                "reg_alpha": 0.1,
            },
            {
                "learning_rate": 0.08,
                "max_depth": 3,
                "min_child_weight": 1.0,
                "subsample": 1.0,
                "colsample_bytree": 1.0,
                "reg_lambda": 0.5,
                "reg_alpha": 0.001,
            },
        ]
    if name == "hist_gradient_boosting":
        return [
            {
                "learning_rate": 0.1,
                "max_leaf_nodes": 31,
                "min_samples_leaf": 20,
                "l2_regularization": 0.001,
                "max_features": 1.0,
            },
            {
                "learning_rate": 0.05,
                "max_leaf_nodes": 63,
                "min_samples_leaf": 40,
                "l2_regularization": 1.0,
                "max_features": 0.7,
            },
            {
                "learning_rate": 0.04,
                "max_leaf_nodes": 15,
                "min_samples_leaf": 10,
                "l2_regularization": 0.1,
                "max_features": 0.5,
            },
        ]
    if name in ("random_forest", "extra_trees"):
        first = 0.5 if name == "extra_trees" or not ctx.classification else 0.3
        # Fully grown trees on many rows cost hundreds of MB per forest: bigger leaves there.
        leaf = 1 if ctx.n_rows <= 5000 else 5
        return [
            {"max_features": first, "min_samples_leaf": leaf},
            {"max_features": 0.8, "min_samples_leaf": 3 * leaf},
        ]
    if name == "linear":
        return [{"C": 1.0}, {"C": 0.1}]
    if name == "knn":
        return [{"n_neighbors": 15, "weights": "distance"}]
    raise KeyError(name)


def style(name: str) -> str:
    return "linear" if name in ("linear", "knn") else "tree"


XGB_FIT_BYTES = 12 * 2**20  # memory one XGBoost fit may hold in trees while training
FOREST_BYTES = 6 * 2**20  # memory one fitted forest may take, whatever the rows


def xgb_rounds(depth: int, per_round: int) -> int:
    """Boosting rounds that keep one fit's trees within XGB_FIT_BYTES (two fits run side by
    side). While training, XGBoost holds ~5 KB per tree plus ~120 bytes per possible node (a
    third of that once the model is reloaded); early stopping decides within the cap."""
    per_tree = 5_000 + 120 * 2**depth
    return int(max(50, min(1000, XGB_FIT_BYTES / (max(1, per_round) * per_tree))))


BOOSTED = ("hist_gradient_boosting", "xgboost")  # a round grows a tree per class
WIDE_FEATURES = 500  # a table this wide starts from the linear family (planner._linear_first)
# Beyond this many classes a forest's tree (which serves every class) beats a boosting round's
# tree per class: extra trees lead the plan, and a boosted baseline gets fewer rows (#17).
FOREST_CLASSES = 5
MANY_CLASSES = 10
MULTICLASS_TREES = 750  # trees one boosting fit grows at most beyond MANY_CLASSES classes


def class_aware(rounds: int, learning_rate: float, per_round: int) -> tuple[int, float]:
    """Rounds and learning rate for ``per_round`` trees a round (one per class).

    Beyond MANY_CLASSES classes a round costs that many trees, so a fit gets fewer rounds at a
    proportionally larger learning rate (at most 0.2): it costs what a fit on a few classes
    costs and still gets near convergence, with early stopping deciding within the cap (#17).
    """
    if per_round <= MANY_CLASSES:
        return rounds, learning_rate
    capped = max(20, min(rounds, MULTICLASS_TREES // per_round))
    return capped, min(0.2, learning_rate * rounds / capped)


def _n_trees(ctx: FitContext) -> int:
    return 100


def _max_leaves(ctx: FitContext) -> int:
    """Leaves per tree that keep a forest within FOREST_BYTES (an sklearn tree node takes 64
    bytes plus 8 per class); fully grown trees on thousands of rows take hundreds of MB."""
    per_node = 64 + 8 * max(1, ctx.n_classes if ctx.classification else 1)
    return max(32, int(FOREST_BYTES / (_n_trees(ctx) * 2 * per_node)))


def build_model(name: str, params: dict[str, Any], ctx: FitContext) -> Any:
    """An unfitted estimator of a family with the given parameters (FLAGS are for the
    preprocessing and the fitting, not the estimator)."""
    params = {k: v for k, v in params.items() if k not in FLAGS}
    if name == "xgboost":
        from mltrainer.tools.training.engine.custom import XGBClassifierModel, XGBRegressorModel

        per_round = ctx.n_classes if ctx.task == "multiclass" else 1
        depth = int(params.get("max_depth", 6))
        rounds, rate = class_aware(
            xgb_rounds(depth, per_round), float(params.get("learning_rate", 0.3)), per_round
        )
        params = {"n_estimators": rounds, **params, "learning_rate": rate}

        if ctx.task == "binary":
            return XGBClassifierModel(
                objective="binary:logistic", random_state=ctx.seed, n_jobs=ctx.n_jobs, **params
            )
        if ctx.task == "multiclass":
            return XGBClassifierModel(
                objective="multi:softprob",
                num_class=ctx.n_classes,
                random_state=ctx.seed,
                n_jobs=ctx.n_jobs,
                **params,
            )
        return XGBRegressorModel(random_state=ctx.seed, n_jobs=ctx.n_jobs, **params)
    if name == "hist_gradient_boosting":
        from mltrainer.tools.training.engine.custom import HGBClassifierModel, HGBRegressorModel

        cls = HGBClassifierModel if ctx.classification else HGBRegressorModel
        per_round = ctx.n_classes if ctx.task == "multiclass" else 1
        rounds, rate = class_aware(
            max(100, min(1000, 3000 // per_round)),
            float(params.get("learning_rate", 0.1)),
            per_round,
        )
        params = {**params, "learning_rate": rate}
        settings: dict[str, Any] = {
            # one tree per class per iteration: at most ~3000 trees, early stopping decides
            "max_iter": rounds,
            "early_stopping": True,
            "validation_fraction": 0.1 if ctx.n_rows >= 1000 else 0.15,
            "n_iter_no_change": 20,
            "categorical_features": list(ctx.categorical_positions) or None,
            "random_state": ctx.seed,
        }
        return cls(**{**settings, **params})
    if name in ("random_forest", "extra_trees"):
        from sklearn.ensemble import (
            ExtraTreesClassifier,
            ExtraTreesRegressor,
            RandomForestClassifier,
            RandomForestRegressor,
        )

        table = {
            ("random_forest", True): RandomForestClassifier,
            ("random_forest", False): RandomForestRegressor,
            ("extra_trees", True): ExtraTreesClassifier,
            ("extra_trees", False): ExtraTreesRegressor,
        }
        return table[(name, ctx.classification)](
            n_estimators=_n_trees(ctx),
            max_leaf_nodes=_max_leaves(ctx),
            n_jobs=ctx.n_jobs,
            random_state=ctx.seed,
            **params,
        )
    if name == "linear":
        if ctx.classification:
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=params["C"], max_iter=500, random_state=ctx.seed)
        from sklearn.linear_model import Ridge

        return Ridge(alpha=1.0 / params["C"], random_state=ctx.seed)
    if name == "knn":
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

        cls = KNeighborsClassifier if ctx.classification else KNeighborsRegressor
        return cls(n_jobs=ctx.n_jobs, **params)
    raise KeyError(name)


# Relative cost of a family's first trial, before anything is measured (two classes, or
# regression: see relative_cost).
RELATIVE_COST = {
    "linear": 0.3,
    "knn": 0.3,
    "hist_gradient_boosting": 1.0,
    "xgboost": 1.0,
    "extra_trees": 1.5,
    "random_forest": 2.5,
}


def relative_cost(name: str, n_classes: int = 0) -> float:
    """``name``'s RELATIVE_COST on a problem of ``n_classes`` classes (0: regression). Beyond
    FOREST_CLASSES classes, a boosted round's trees (one per class) and a multinomial linear
    model's weight vectors (one per class, in one vectorised solver: its cost grows more
    slowly) outgrow a forest's tree and k-NN, which serve every class. On 150 classes and
    11,700 rows a linear candidate took 3.5 s a fold, extra trees 5 s: a clock that took it for
    the cheap family it is on two classes (0.2 of extra trees) ran it 7 s past a 15 s job's
    search deadline (#17). Up to FOREST_CLASSES the priors stand: the fits measured first
    correct them (seattle_weather's five classes: pricing its boosting 2.5 times higher kept
    XGBoost out of a 15 s search, 0.7842 -> 0.7350)."""
    cost = RELATIVE_COST.get(name, 1.0)
    many = n_classes / FOREST_CLASSES
    if many > 1 and name in BOOSTED:
        return cost * many
    if many > 1 and name == "linear":
        return cost * math.sqrt(many)
    return cost


def refit_params(name: str, params: dict[str, Any], facts: list[dict[str, Any]]) -> dict[str, Any]:
    """Parameters for a refit on all rows, from what the folds learned (no validation set)."""
    out = dict(params)
    if name == "xgboost" and facts:
        rounds = float(np.mean([f.get("n_estimators", 100) for f in facts]))
        out["n_estimators"] = max(10, int(rounds * 1.1))
        out["early_stopping_rounds"] = 0
    if name == "hist_gradient_boosting" and facts:
        # as many iterations as the folds stopped at (scaled for the extra rows): every row is
        # learned from and the fit takes a predictable time
        iterations = float(np.mean([f.get("n_iter", 100) for f in facts]))
        out["max_iter"] = max(10, int(iterations * 1.1))
        out["early_stopping"] = False
    return out

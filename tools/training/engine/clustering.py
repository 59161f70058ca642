"""Clustering: no target; k chosen by silhouette; ``predict`` assigns clusters to new rows."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.training.engine.preprocess import build_preprocessor
from mltrainer.tools.training.plan import TrainingPlan
from mltrainer.tools.training.progress import PublishedModel, Reporter, TrainingCancelled
from mltrainer.tools.training.results import AutoMLResult, HoldoutFrame, LeaderboardEntry

if TYPE_CHECKING:
    import pandas as pd

SILHOUETTE_SAMPLE = 3000
# k = 2..MIN_K are tried whatever the clock (a cancel still stops them): the budget counts from
# the call, so a slow start must not leave a silhouette nothing to compare with (#17).
MIN_K = 4


def fit_clustering(
    frame: pd.DataFrame, plan: TrainingPlan, reporter: Reporter, start: float
) -> AutoMLResult:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.pipeline import Pipeline

    end = start + plan.time.total_s
    X = frame[plan.feature_names].reset_index(drop=True)
    prep, _ = build_preprocessor(plan.columns, "linear", "clustering", plan.seed)
    Xt = prep.fit_transform(X)
    if hasattr(Xt, "toarray") and Xt.shape[1] > 2000:
        from sklearn.decomposition import TruncatedSVD

        Xt = TruncatedSVD(n_components=100, random_state=plan.seed).fit_transform(Xt)
    rng = np.random.default_rng(plan.seed)
    sample = rng.choice(len(X), size=min(len(X), SILHOUETTE_SAMPLE), replace=False)
    leaderboard: list[LeaderboardEntry] = []
    best: tuple[float, int] | None = None
    max_k = max(2, min(10, len(X) - 1))
    stopped = "converged"  # every k tried: the same data and seed give the same clusters
    for k in range(2, max_k + 1):
        if reporter.cancelled() or (
            k > MIN_K and best is not None and time.monotonic() > end - 0.2 * (plan.time.total_s)
        ):
            plan.decide("clustering", f"stopped at k={k - 1}", "the time budget or a cancel")
            stopped = "cancelled" if reporter.cancelled() else "time"
            break
        began = time.monotonic()
        model = KMeans(n_clusters=k, n_init=4, random_state=plan.seed).fit(Xt)
        labels = model.labels_
        if len(np.unique(labels[sample])) < 2:
            continue
        value = float(silhouette_score(Xt[sample], labels[sample], random_state=plan.seed))
        leaderboard.append(
            LeaderboardEntry(
                name=f"kmeans_k{k}",
                family="kmeans",
                params={"n_clusters": k},
                cv_mean=value,
                cv_std=0.0,
                fit_time_s=round(time.monotonic() - began, 3),
            )
        )
        reporter.event(
            f"k={k}: silhouette {value:.4f}", progress=min(0.9, 0.1 + 0.8 * (k - 1) / (max_k - 1))
        )
        if best is None or value > best[0]:
            best = (value, k)
    if best is None:
        if stopped == "cancelled":
            raise TrainingCancelled
        raise InvalidInput(
            "The rows do not separate into clusters (all identical?).",
            next_step="Check the columns, or exclude constant ones.",
        )
    value, k = best
    plan.decide("clustering", f"k={k}", f"the highest silhouette ({value:.4f}) for k in 2..{max_k}")
    prep_final, _ = build_preprocessor(plan.columns, "linear", "clustering", plan.seed)
    estimator = Pipeline(
        [
            ("prep", prep_final),
            ("model", KMeans(n_clusters=k, n_init=4, random_state=plan.seed)),
        ]
    ).fit(X)
    reporter.publish(
        estimator,
        PublishedModel(
            name=f"kmeans_k{k}",
            task="clustering",
            metric="silhouette",
            score=value,
            features=plan.feature_names,
        ),
    )
    for entry in leaderboard:
        entry.weight = 1.0 if entry.params["n_clusters"] == k else 0.0
    labels = estimator.predict(X)
    sizes = np.bincount(labels, minlength=k)
    return AutoMLResult(
        estimator=estimator,
        task="clustering",
        metric="silhouette",
        greater_is_better=True,
        target=None,
        features=plan.feature_names,
        plan=plan,
        decisions=plan.decisions,
        leaderboard=sorted(leaderboard, key=lambda e: e.cv_mean, reverse=True),
        cv_mean=value,
        cv_std=0.0,
        holdout={
            "silhouette": value,
            "n_clusters": float(k),
            "largest_cluster_fraction": float(sizes.max() / len(X)),
        },
        feature_importance=[],
        holdout_frame=HoldoutFrame(x_test=X, y_pred=labels),
        dropped_columns=plan.dropped,
        seed=plan.seed,
        elapsed_s=round(time.monotonic() - start, 3),
        search_stopped=stopped,
        model_name=f"kmeans_k{k}",
    )

"""Permutation importance on held-out rows, with the model that never saw them.

Each feature's values are shuffled among the held-out rows ``REPEATS`` times; its importance is
the mean drop of the metric (greater-is-better form) and the spread of those drops. A model
fitted on these rows would find importance in pure noise (it memorised them): hence the model
fitted on the training rows only, never the refit on every row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from mltrainer.tools.training.results import ImportanceEntry

if TYPE_CHECKING:
    import pandas as pd

ROWS = 1000
REPEATS = 5
DOMINANT_SHARE = 0.5  # of the summed positive importance, by one feature
DOMINANT_DROP = 0.02  # and a drop of the metric at least this large


def permutation_importance(
    value: Callable[[pd.DataFrame, np.ndarray], float],
    X: pd.DataFrame,
    y: np.ndarray,
    features: list[str],
    seed: int,
    end: float,
) -> tuple[list[ImportanceEntry], int]:
    """Importance of each feature (best first) and how many features had time to be measured.

    ``value(X, y)`` is the model's metric (greater is better) on rows ``X`` with truth ``y``.
    As many repeats as time allows for every feature (at least two, for a spread, and at most
    ``REPEATS``); a feature whose repeats would end after ``end`` is not started.
    """
    rng = np.random.default_rng(seed)
    if len(X) > ROWS:
        rows = rng.choice(len(X), size=ROWS, replace=False)
        X, y = X.iloc[rows], y[rows]
    X = X.reset_index(drop=True)
    began = time.monotonic()
    try:
        base = value(X, y)
    except ValueError:  # e.g. ROC AUC on held-out rows of a single class
        return [], 0
    per_eval = max(time.monotonic() - began, 1e-4)
    affordable = (end - time.monotonic()) / (per_eval * max(1, len(features)))
    repeats = int(np.clip(affordable, 2, REPEATS))
    out: list[ImportanceEntry] = []
    for name in features:
        if time.monotonic() + repeats * per_eval > end:
            break
        drops = []
        for _ in range(repeats):
            shuffled = X.copy()
            shuffled[name] = rng.permutation(shuffled[name].to_numpy())
            try:
                drops.append(base - value(shuffled, y))
            except ValueError:
                break
        if drops:
            out.append(
                ImportanceEntry(
                    name=name,
                    mean=round(float(np.mean(drops)), 6),
                    std=round(float(np.std(drops)), 6),
                    repeats=len(drops),
                )
            )
    return sorted(out, key=lambda e: e.mean, reverse=True), len(out)


def cost(predict_row_seconds: float, rows: int, features: int) -> float:
    """Seconds the smallest importance (two repeats) takes for a model predicting at this
    speed: what the search keeps for it."""
    return predict_row_seconds * min(rows, ROWS) * (2 * features + 1)


def dominant_feature(importance: list[ImportanceEntry], metric: str) -> str | None:
    """A warning when one feature carries most of the model's held-out importance."""
    positive = [e for e in importance if e.mean > 0]
    total = sum(e.mean for e in positive)
    if not positive or total <= 0:
        return None
    top = positive[0]
    share = top.mean / total
    if share < DOMINANT_SHARE or top.mean < DOMINANT_DROP or len(importance) < 2:
        return None
    runner = f"; next, '{positive[1].name}', {positive[1].mean:.3f}" if len(positive) > 1 else ""
    return (
        f"'{top.name}' carries {share:.0%} of the model's importance: shuffling it on held-out "
        f"rows costs {top.mean:.3f} ± {top.std:.3f} of {metric}{runner}. Check that it is known "
        "when predictions are made; if it is recorded only after the outcome, drop it with "
        f"exclude_columns=['{top.name}']."
    )


def as_pairs(importance: list[ImportanceEntry]) -> list[tuple[str, float]]:
    return [(e.name, e.mean) for e in importance]


def describe_scope(found: list[ImportanceEntry], total: int, rows: int) -> tuple[str, str, str]:
    """The decision recording what the importance covers."""
    measured = len(found)
    repeats = max((e.repeats for e in found), default=0)
    return (
        "importance",
        f"permutation on {min(rows, ROWS)} held-out rows, {repeats} repeats, "
        f"{measured} of {total} features",
        "the model fitted on the training rows only, so it never saw these rows"
        + ("" if measured == total else "; the time budget ran out for the rest"),
    )

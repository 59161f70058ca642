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
MIN_ROWS = 200  # fewer held-out rows are used when time is short, never fewer than these
REPEATS = 5
SHARE = 0.05  # of the budget: what the search keeps for the importance at most
# The first pass (every feature shuffled once) may run this long past ``end``: a loaded machine
# must not leave a model with no importance at all.
FIRST_PASS_S = 1.0
DOMINANT_SHARE = 0.8  # of the summed positive importance, by one feature
DOMINANT_RATIO = 8.0  # times the next feature's
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
    Breadth first: every feature is shuffled once before any is shuffled again, up to
    ``REPEATS`` times each, until ``end`` (so a short budget still covers every feature); when
    even two repeats would not fit, on fewer rows (``MIN_ROWS`` at least). The first pass has
    ``FIRST_PASS_S`` seconds at least, however late it starts.
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
    needed = 2 * per_eval * len(features)  # two repeats of every feature
    available = end - time.monotonic()
    if needed > available and len(X) > MIN_ROWS:  # fewer rows, so every feature gets its two
        keep = max(MIN_ROWS, int(len(X) * max(available, 0.0) / needed))
        X, y = X.iloc[:keep], y[:keep]
        began = time.monotonic()
        base = value(X, y)
        per_eval = max(time.monotonic() - began, 1e-4)
    drops: dict[str, list[float]] = {name: [] for name in features}
    first_end = max(end, time.monotonic() + FIRST_PASS_S)
    for repeat in range(REPEATS):
        for name in features:
            if time.monotonic() + per_eval > (first_end if repeat == 0 else end):
                break
            shuffled = X.copy()
            shuffled[name] = rng.permutation(shuffled[name].to_numpy())
            try:
                drops[name].append(base - value(shuffled, y))
            except ValueError:
                continue
    out = [
        ImportanceEntry(
            name=name,
            mean=round(float(np.mean(found)), 6),
            std=round(float(np.std(found)), 6),
            repeats=len(found),
        )
        for name, found in drops.items()
        if found
    ]
    return sorted(out, key=lambda e: e.mean, reverse=True), len(out)


def cost(predict_row_seconds: float, rows: int, features: int, budget: float) -> float:
    """Seconds the search keeps for the importance: two repeats of every feature on the
    held-out rows at this prediction speed, at most SHARE of the budget (then fewer rows)."""
    return min(predict_row_seconds * min(rows, ROWS) * (2 * features + 1), SHARE * budget)


def dominant_feature(importance: list[ImportanceEntry], metric: str) -> str | None:
    """A warning when one feature carries most of the model's held-out importance."""
    positive = [e for e in importance if e.mean > 0]
    total = sum(e.mean for e in positive)
    if not positive or total <= 0:
        return None
    top = positive[0]
    share = top.mean / total
    runner_up = positive[1].mean if len(positive) > 1 else 0.0
    if share < DOMINANT_SHARE or top.mean < DOMINANT_DROP or len(importance) < 2:
        return None
    if top.mean < DOMINANT_RATIO * runner_up:
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
    repeats = [e.repeats for e in found] or [0]
    low, high = min(repeats), max(repeats)
    shown = str(low) if low == high else f"{low} to {high}"
    short = len(found) < total or low < REPEATS
    return (
        "importance",
        f"permutation on {min(rows, ROWS)} held-out rows, {shown} repeats, "
        f"{len(found)} of {total} features",
        "the model fitted on the training rows only, so it never saw these rows"
        + ("; the time budget allowed no more" if short else ""),
    )

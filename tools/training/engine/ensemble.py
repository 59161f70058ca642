"""Greedy ensemble selection (Caruana et al., 2004) over out-of-fold predictions, and its
nested cross-fitting: weights chosen without the rows they are scored on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np


def greedy_selection(
    oofs: list[np.ndarray],
    utility_of: Callable[[np.ndarray], float],
    rounds: int = 30,
) -> tuple[list[float], float]:
    """Weights (summing to 1) for the candidates and the blend's utility.

    Starts from the best single candidate and adds, with replacement, whichever candidate most
    improves the blend; stops when nothing helps.
    """
    singles = [utility_of(o) for o in oofs]
    first = int(np.argmax(singles))
    chosen = [first]
    blend = oofs[first].copy()
    best = singles[first]
    for _ in range(rounds):
        size = len(chosen)
        scores = [utility_of((blend * size + o) / (size + 1)) for o in oofs]
        pick = int(np.argmax(scores))
        if scores[pick] <= best + 1e-9:
            break
        best = scores[pick]
        blend = (blend * size + oofs[pick]) / (size + 1)
        chosen.append(pick)
    counts = Counter(chosen)
    weights = [counts.get(i, 0) / len(chosen) for i in range(len(oofs))]
    return weights, best


def cross_fitted(
    oofs: list[np.ndarray],
    utility_on: Callable[[np.ndarray, np.ndarray], float],
    splits: list[tuple[np.ndarray, np.ndarray]],
    validated: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions of the two ways to choose, each fold's rows predicted by a choice
    made on the other folds' rows only (nested cross-fitting): the greedy blend, and the single
    best candidate. ``utility_on(pred, rows)`` scores predictions on a mask of rows;
    ``validated`` marks the rows some fold validates."""
    blend = np.zeros_like(oofs[0])
    single = np.zeros_like(oofs[0])
    for _, valid in splits:
        others = validated.copy()
        others[valid] = False
        if not others.any():  # one fold only: nothing else to choose on
            others = validated

        def on_others(pred: np.ndarray, rows: np.ndarray = others) -> float:
            return utility_on(pred, rows)

        weights, _ = greedy_selection(oofs, on_others)
        blend[valid] = np.sum([w * o[valid] for w, o in zip(weights, oofs, strict=True)], axis=0)
        best = int(np.argmax([utility_on(o, others) for o in oofs]))
        single[valid] = oofs[best][valid]
    return blend, single

"""Greedy ensemble selection (Caruana et al., 2004) over out-of-fold predictions."""

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

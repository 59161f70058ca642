"""Calibrated probabilities and the decision rule for labels, both from out-of-fold predictions.

Calibration: Platt scaling of the logit (two classes) or a temperature (more), fitted on the
chosen model's out-of-fold probabilities and kept only if it lowers the log loss on folds it was
not fitted on. Both keep the order of the scores, so ROC AUC and argmax accuracy do not move.

Decision: the label is the class with the largest weight x probability. For a label metric (F1,
balanced accuracy), and for imbalanced classes scored by a probability metric (where plain
argmax often predicts no minority row at all), the weights are chosen on the out-of-fold
predictions: a threshold on the positive class's probability (two classes), or the class priors
to a power (more). Accuracy keeps argmax, which calibrated probabilities make its best rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mltrainer.tools.training.engine.custom import calibrate_proba
from mltrainer.tools.training.engine.metrics import MetricContext, score

IMBALANCED = 0.1  # minority share under which the decision is tuned whatever the metric
MIN_GAIN = 0.005  # a decision rule must beat plain argmax by this much out of fold
# Calibration must lower the log loss by this much (nats) and this share: near-perfect
# out-of-fold predictions would otherwise be sharpened into certainty that new rows punish.
CALIBRATION_GAIN = (0.005, 0.01)
SHARPEST = 5.0  # the largest slope (Platt) or power (temperature) a calibration may use
THRESHOLDS = np.round(np.linspace(0.02, 0.98, 97), 4)
POWERS = (0.25, 0.5, 0.75, 1.0)
# A temperature is fitted on at most this many rows: each step of its search computes a softmax
# of rows x classes, and six fits on glyphs26's 27,000 x 26 took 4 s on a slow machine, past the
# budget's end, where nothing had reserved time for them (#17).
TEMPERATURE_ROWS = 10_000


@dataclass
class Tuning:
    """What was chosen, and the decisions to record: (stage, decision, reason)."""

    calibration: list[float] | None = None
    class_weights: list[float] | None = None
    threshold: float | None = None
    decisions: list[tuple[str, str, str]] = field(default_factory=list)


def tune(oof: np.ndarray, y: np.ndarray, metric: str, ctx: MetricContext, seed: int) -> Tuning:
    """Calibration and decision rule for out-of-fold probabilities ``oof`` of labels ``y``
    (fitted in float64, however the search kept them)."""
    oof = np.asarray(oof, dtype=np.float64)
    tuning = Tuning()
    if len(y) < 30 or len(np.unique(y)) < 2:
        return tuning
    tuning.calibration = _calibration(oof, y, ctx, seed, tuning)
    calibrated = calibrate_proba(oof, tuning.calibration)
    _decision(calibrated, y, metric, ctx, tuning)
    return tuning


def _calibration(
    oof: np.ndarray, y: np.ndarray, ctx: MetricContext, seed: int, tuning: Tuning
) -> list[float] | None:
    from sklearn.model_selection import KFold

    before = score("log_loss", y, oof, ctx)
    folds = KFold(n_splits=5, shuffle=True, random_state=seed).split(y)
    held = np.zeros_like(oof)
    for train, valid in folds:
        held[valid] = calibrate_proba(oof[valid], _fit(oof[train], y[train], ctx, seed))
    after = score("log_loss", y, held, ctx)
    absolute, relative = CALIBRATION_GAIN
    if not (before - after >= absolute and after <= before * (1 - relative)):
        tuning.decisions.append(
            (
                "calibration",
                "none",
                f"out-of-fold log loss {before:.4f} was not improved by calibrating "
                f"({after:.4f} on held-out folds)",
            )
        )
        return None
    params = _fit(oof, y, ctx, seed)
    kind = "Platt scaling" if len(params) == 2 else "temperature scaling"
    tuning.decisions.append(
        (
            "calibration",
            kind,
            f"fitted on out-of-fold probabilities: log loss {before:.4f} -> {after:.4f} on folds "
            "the calibration did not see; the order of the scores is unchanged",
        )
    )
    return params


def _fit(oof: np.ndarray, y: np.ndarray, ctx: MetricContext, seed: int) -> list[float]:
    """The calibration parameters minimising the log loss of ``oof`` (see calibrate_proba)."""
    from scipy.optimize import minimize, minimize_scalar

    clipped = np.clip(oof, 1e-7, 1.0)
    if oof.shape[1] == 2:
        logit = np.log(clipped[:, 1]) - np.log(clipped[:, 0])
        positive = (y == 1).astype(float)

        def loss(ab: np.ndarray) -> float:
            z = ab[0] * logit + ab[1]
            return float(np.mean(np.logaddexp(0.0, z) - positive * z))

        # a >= 0: scores that rank worse than chance out of fold calibrate to the base rate
        found = minimize(
            loss, np.array([1.0, 0.0]), method="L-BFGS-B", bounds=[(0.0, SHARPEST), (-50.0, 50.0)]
        )
        return [float(v) for v in found.x]

    if len(y) > TEMPERATURE_ROWS:  # one number: a sample pins it down as well as every row
        rows = np.random.default_rng(seed).choice(len(y), TEMPERATURE_ROWS, replace=False)
        oof, y = oof[rows], y[rows]

    def temperature_loss(s: float) -> float:
        return score("log_loss", y, calibrate_proba(oof, [s]), ctx)

    found = minimize_scalar(temperature_loss, bounds=(0.05, SHARPEST), method="bounded")
    return [float(found.x)]


def _decision(
    proba: np.ndarray, y: np.ndarray, metric: str, ctx: MetricContext, tuning: Tuning
) -> None:
    shares = np.bincount(y, minlength=proba.shape[1]) / len(y)
    imbalanced = float(shares.min()) < IMBALANCED
    if metric in ("f1", "balanced_accuracy"):
        goal, why = metric, f"the metric, {metric}, scores labels"
    elif imbalanced and metric in ("roc_auc", "log_loss"):
        goal = "f1"
        why = (
            f"the rarest class is {shares.min():.1%} of rows: plain argmax rarely predicts it; "
            "F1 (macro for several classes) decides"
        )
    else:
        return
    rules = _rules(proba, shares, ctx)
    plain = _goal(goal, y, proba, ctx, None)
    best = max(rules, key=lambda rule: _goal(goal, y, proba, ctx, rule[1]))
    gained = _goal(goal, y, proba, ctx, best[1])
    if gained < plain + MIN_GAIN:
        tuning.decisions.append(
            ("decision", "argmax", f"{why}; no rule beat argmax ({goal} {plain:.4f}) out of fold")
        )
        return
    tuning.class_weights = list(best[1])
    if proba.shape[1] == 2:
        tuning.threshold = float(best[0])
    what = f"threshold {best[0]:.2f} on P({_positive(ctx)})" if proba.shape[1] == 2 else best[0]
    tuning.decisions.append(
        (
            "decision",
            str(what),
            f"{why}; out-of-fold {goal} {gained:.4f} vs {plain:.4f} with argmax (predict "
            "takes another threshold)",
        )
    )


def _rules(
    proba: np.ndarray, shares: np.ndarray, ctx: MetricContext
) -> list[tuple[float | str, tuple[float, ...]]]:
    """Candidate decision rules: (what it is, class weights)."""
    if proba.shape[1] == 2:
        pos = ctx.positive_index
        out: list[tuple[float | str, tuple[float, ...]]] = []
        for t in THRESHOLDS:
            weights = [float(t), float(t)]
            weights[pos] = float(1 - t)  # P(pos) * (1 - t) > P(neg) * t  <=>  P(pos) > t
            out.append((float(t), tuple(weights)))
        return out
    safe = np.clip(shares, 1e-6, None)
    return [
        (f"class weights (1 / prior) ** {p}", tuple(float(w) for w in safe**-p)) for p in POWERS
    ]


def _goal(
    goal: str, y: np.ndarray, proba: np.ndarray, ctx: MetricContext, weights: tuple | None
) -> float:
    from dataclasses import replace

    return score(goal, y, proba, replace(ctx, class_weights=weights))


def _positive(ctx: MetricContext) -> str:
    return f"class {ctx.positive_index}"

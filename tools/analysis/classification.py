"""Classification errors: per-class precision and recall, the costliest confusions, calibration
by probability bin, and the rows the model is most sure of while wrong."""

from __future__ import annotations

import numpy as np

from mltrainer.tools.analysis.facts import ModelFacts
from mltrainer.tools.analysis.models import (
    Calibration,
    CalibrationBin,
    ClassificationDetail,
    ClassStat,
    ConfusionPair,
    RowError,
)
from mltrainer.tools.analysis.rows import EvaluatedRows

MAX_CLASSES = 50
MAX_PAIRS = 10
MAX_ROWS_SHOWN = 10
CALIBRATION_BINS = 10
CALIBRATED_ECE = 0.05


def classification_detail(
    rows: EvaluatedRows, facts: ModelFacts, hidden: set[str]
) -> ClassificationDetail:
    actual, predicted = rows.actual.to_numpy(), rows.predicted.to_numpy()
    return ClassificationDetail(
        accuracy=float(np.mean(actual == predicted)),
        per_class=_per_class(actual, predicted, facts),
        confusion_pairs=_pairs(actual, predicted),
        calibration=calibration(rows, facts),
        confident_errors=_confident_errors(rows, facts, hidden),
    )


def _per_class(actual: np.ndarray, predicted: np.ndarray, facts: ModelFacts) -> list[ClassStat]:
    from sklearn.metrics import precision_recall_fscore_support

    labels = list(facts.classes or sorted(set(actual) | set(predicted)))
    precision, recall, f1, support = precision_recall_fscore_support(
        actual, predicted, labels=labels, zero_division=0
    )
    stats = [
        ClassStat(label=label, precision=float(p), recall=float(r), f1=float(f), support=int(s))
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    ]
    return sorted(stats, key=lambda s: -s.support)[:MAX_CLASSES]


def _pairs(actual: np.ndarray, predicted: np.ndarray) -> list[ConfusionPair]:
    import pandas as pd

    wrong = actual != predicted
    if not wrong.any():
        return []
    counts = pd.DataFrame({"actual": actual[wrong], "predicted": predicted[wrong]}).value_counts()
    support = pd.Series(actual).value_counts()
    return [
        ConfusionPair(
            actual=str(truth),
            predicted=str(guess),
            count=int(count),
            share_of_actual=float(count / support[truth]),
            share_of_errors=float(count / wrong.sum()),
        )
        for (truth, guess), count in counts.head(MAX_PAIRS).items()
    ]


def calibration(rows: EvaluatedRows, facts: ModelFacts) -> Calibration | None:
    """Reliability by probability bin. The verdict reads the confidence in the predicted class
    against how often it is right, for binary and multiclass alike."""
    if rows.proba is None or rows.proba.empty:
        return None
    actual, predicted = rows.actual.to_numpy(), rows.predicted.to_numpy()
    confidence = rows.proba.max(axis=1).to_numpy(dtype=float)
    right = (actual == predicted).astype(float)
    positive = facts.positive
    if positive is not None and positive in rows.proba.columns:
        kind = "positive_class"
        p = rows.proba[positive].to_numpy(dtype=float)
        hit = (actual == positive).astype(float)
    else:
        kind, positive, p, hit = "top_label", None, confidence, right
    bins = _bins(p, hit)
    n = len(p)
    ece = sum(b.rows / n * abs(b.mean_predicted - b.observed) for b in bins)
    overconfidence = float(np.mean(confidence) - np.mean(right))
    verdict = "calibrated"
    if ece >= CALIBRATED_ECE:
        verdict = "over_confident" if overconfidence > 0 else "under_confident"
    return Calibration(
        kind=kind,  # type: ignore[arg-type]
        positive_class=positive,
        bins=bins,
        ece=float(ece),
        verdict=verdict,  # type: ignore[arg-type]
    )


def _bins(p: np.ndarray, hit: np.ndarray) -> list[CalibrationBin]:
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    index = np.clip(np.digitize(p, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    out = []
    for b in range(CALIBRATION_BINS):
        inside = index == b
        if inside.any():
            out.append(
                CalibrationBin(
                    low=float(edges[b]),
                    high=float(edges[b + 1]),
                    rows=int(inside.sum()),
                    mean_predicted=float(p[inside].mean()),
                    observed=float(hit[inside].mean()),
                )
            )
    return out


def _confident_errors(rows: EvaluatedRows, facts: ModelFacts, hidden: set[str]) -> list[RowError]:
    actual, predicted = rows.actual.to_numpy(), rows.predicted.to_numpy()
    wrong = np.flatnonzero(actual != predicted)
    confidence = np.full(len(rows), np.nan)
    if rows.proba is not None:
        columns = {str(c): i for i, c in enumerate(rows.proba.columns)}
        table = rows.proba.to_numpy(dtype=float)
        for i in wrong:
            if predicted[i] in columns:
                confidence[i] = table[i, columns[predicted[i]]]
    order = wrong[np.argsort(-np.nan_to_num(confidence[wrong], nan=-1.0), kind="stable")]
    show_target = facts.target not in hidden
    return [
        RowError(
            row=int(rows.row[i]) if rows.row[i] >= 0 else None,
            actual=str(actual[i]) if show_target else None,
            predicted=str(predicted[i]) if show_target else None,
            confidence=None if np.isnan(confidence[i]) else float(confidence[i]),
            values=rows.values_of(int(i), hidden),
        )
        for i in order[:MAX_ROWS_SHOWN]
    ]

"""Small generated datasets and reporters for the engine and planner tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mltrainer.tools.training.progress import NullReporter, PublishedModel
from mltrainer.tools.training.request import TrainRequest


def mixed_classification(rows: int = 400, seed: int = 0, classes: int = 2) -> pd.DataFrame:
    """Numeric, categorical (with missing values), high-cardinality and date columns."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=rows)
    x2 = rng.normal(size=rows)
    color = rng.choice(["red", "green", "blue"], size=rows)
    city = rng.choice([f"city{i}" for i in range(60)], size=rows)
    logit = 1.5 * x1 - x2 + (color == "red") * 1.2
    if classes == 2:
        label = np.where(logit + rng.normal(scale=0.7, size=rows) > 0, "yes", "no")
    else:
        label = np.digitize(logit + rng.normal(scale=0.5, size=rows), [-1.0, 1.0]).astype(str)
        label = np.char.add("c", label)
    frame = pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "color": color,
            "city": city,
            "day": pd.date_range("2021-01-01", periods=rows, freq="D").astype(str),
            "label": label,
        }
    )
    frame.loc[rng.choice(rows, size=rows // 10, replace=False), "color"] = None
    frame.loc[rng.choice(rows, size=rows // 10, replace=False), "x2"] = np.nan
    return frame


def regression_frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4))
    kind = rng.choice(["a", "b", "c"], size=rows)
    y = 3 * x[:, 0] - 2 * x[:, 1] ** 2 + (kind == "a") * 2 + rng.normal(scale=0.3, size=rows)
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    frame["kind"] = kind
    frame["y"] = y
    return frame


def text_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    good = ["great", "excellent", "lovely", "superb", "happy", "fine"]
    bad = ["awful", "terrible", "poor", "broken", "sad", "bad"]
    filler = ["the", "product", "was", "really", "and", "shipping", "it", "arrived", "today"]
    texts, labels = [], []
    for _ in range(rows):
        positive = rng.random() < 0.5
        words = list(rng.choice(filler, size=6)) + list(rng.choice(good if positive else bad, 2))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append("pos" if positive else "neg")
    return pd.DataFrame({"review": texts, "sentiment": labels})


def series_frame(points: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(points)
    y = 20 + 0.05 * t + 4 * np.sin(2 * np.pi * t / 7) + rng.normal(scale=0.4, size=points)
    dates = pd.date_range("2022-01-01", periods=points, freq="D")
    return pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "sales": y})


@dataclass
class Warning_:
    kind: str
    column: str | None


class RecordingReporter(NullReporter):
    """Remembers the order of what it was told (publications among events); can cancel after
    the first publication, or from the start."""

    def __init__(
        self,
        cancel_after_publish: bool = False,
        cancel_at_once: bool = False,
        cancel_after_candidates: int | None = None,
    ) -> None:
        super().__init__()
        self.log: list[str] = []  # "event: ..." and "publish: <name>", in order
        self.cancel_after_publish = cancel_after_publish
        self.cancel_at_once = cancel_at_once
        self.cancel_after_candidates = cancel_after_candidates

    def candidates(self) -> int:
        """How many search candidates were scored (their lines read ``metric mean ± std``)."""
        return sum(" ± " in line for line in self.events)

    def event(self, message: str, *, progress: float | None = None, level: str = "info") -> None:
        super().event(message, progress=progress, level=level)
        self.log.append(f"event: {message}")

    def publish(self, estimator: Any, model: PublishedModel) -> None:
        super().publish(estimator, model)
        self.log.append(f"publish: {model.name}")

    def cancelled(self) -> bool:
        after = self.cancel_after_candidates
        return (
            self.cancel_at_once
            or (self.cancel_after_publish and bool(self.published))
            or (after is not None and self.candidates() >= after)
        )


def assert_converges_the_same(
    frame: pd.DataFrame, request: TrainRequest, decision: tuple[str, str]
) -> None:
    """Two fits of ``request`` whose searches converge, each recording ``decision`` (stage,
    decision), end the same: leaderboard, CV and held-out scores, and predictions."""
    from mltrainer.tools.training.automl import fit_automl

    def run() -> tuple[object, ...]:
        result = fit_automl(frame, request, NullReporter())
        assert result.search_stopped == "converged", result.decisions[-5:]
        assert decision in [(d.stage, d.decision) for d in result.decisions]
        proba = result.estimator.predict_proba(frame[result.features])
        board = [(e.name, e.params, e.cv_mean, e.weight) for e in result.leaderboard]
        return board, result.cv_mean, result.holdout, proba

    first, second = run(), run()
    assert first[:3] == second[:3]
    assert np.array_equal(first[3], second[3])

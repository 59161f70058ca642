"""Small generated datasets and reporters for the engine and planner tests."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mltrainer.tools.training.reporting import NullReporter


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
    """Remembers when each model was published; can cancel after the first publication."""

    def __init__(self, cancel_after_publish: bool = False) -> None:
        super().__init__()
        self.started = time.monotonic()
        self.publish_times: list[float] = []
        self.cancel_after_publish = cancel_after_publish

    def publish(self, estimator: Any, summary: dict[str, Any]) -> None:
        super().publish(estimator, summary)
        self.publish_times.append(time.monotonic() - self.started)

    def cancelled(self) -> bool:
        return self.cancel_after_publish and bool(self.published)

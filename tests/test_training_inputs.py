"""The training rows' input profile (what predict checks new rows against): the same for a
column whatever its dtype, and built from the distinct values, not from each row's text."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mltrainer.tools.training.inputs import MAX_CATEGORIES, describe_inputs, digest


def test_a_categorical_column_has_the_same_profile_as_its_text() -> None:
    rng = np.random.default_rng(0)
    values = rng.choice(["red", "green", "blue", None], size=5000)
    as_text = pd.DataFrame({"colour": pd.Series(values, dtype=object), "n": rng.normal(size=5000)})
    as_category = as_text.astype({"colour": "category"})
    text, category = describe_inputs(as_text, ["colour"]), describe_inputs(as_category, ["colour"])
    # everything but the dtype's name
    assert [f.model_dump(exclude={"dtype"}) for f in text.features] == [
        f.model_dump(exclude={"dtype"}) for f in category.features
    ]
    (entry,) = category.features
    assert entry.kind == "categorical" and entry.complete
    assert entry.categories == sorted(digest(v) for v in ("blue", "green", "red"))
    assert 0.2 < entry.missing_rate < 0.3


def test_more_values_than_kept_leaves_the_list_incomplete() -> None:
    frame = pd.DataFrame({"id": pd.Series([f"u{i}" for i in range(MAX_CATEGORIES + 1)])})
    (entry,) = describe_inputs(frame.astype("category"), ["id"]).features
    assert not entry.complete and entry.categories == []

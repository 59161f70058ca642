"""Saving and loading a model leaves torch and pytest alone.

skops lists scikit-learn's estimators when it is imported, which imports torch where the deep
extra installed it (200 MB and 2 s) and pytest where it is installed (6 MB), in the worker and
in the server, for libraries no model of the engine holds (``trusted.skops_io``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SAVE_AND_LOAD = """
import sys
from mltrainer.tools.training.trusted import skops_io
from sklearn.ensemble import HistGradientBoostingClassifier
model = skops_io().loads(skops_io().dumps(HistGradientBoostingClassifier()))
assert "{name}" not in sys.modules, "skops imported {name}"
import {name}  # still importable afterwards, by code that needs it
print(type(model).__name__, {name}.__name__)
"""

HGB = "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier"
TRUSTED = """
import json, sys
if sys.argv[1] == "hidden":
    from mltrainer.tools.training.trusted import skops_io
    skops_io()
from skops.io import _trusted_types
print(json.dumps(sorted(_trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES)))
"""


def run(script: str, *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-P", "-c", script, *args], capture_output=True, text=True, cwd=cwd
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("name", ["torch", "pytest"])
def test_a_model_is_saved_and_loaded_without_importing(tmp_path: Path, name: str) -> None:
    pytest.importorskip(name)
    out = run(SAVE_AND_LOAD.format(name=name), cwd=tmp_path)
    assert out.split() == ["HistGradientBoostingClassifier", name]


def test_skops_trusts_the_same_estimators_with_them_hidden(tmp_path: Path) -> None:
    hidden = json.loads(run(TRUSTED, "hidden", cwd=tmp_path))
    plain = json.loads(run(TRUSTED, "plain", cwd=tmp_path))
    assert hidden == plain
    assert HGB in hidden

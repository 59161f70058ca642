"""Saving and loading a model leaves torch alone.

skops lists scikit-learn's estimators when it is imported, which imports torch where the deep
extra installed it: 200 MB and 2 s in the worker and in the server, for a library no model of
the engine holds (``trusted.skops_io``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import sys
from mltrainer.tools.training.trusted import skops_io
from sklearn.ensemble import HistGradientBoostingClassifier
model = skops_io().loads(skops_io().dumps(HistGradientBoostingClassifier()))
assert "torch" not in sys.modules, "skops imported torch"
import torch  # still importable afterwards, by code that needs it
print(type(model).__name__, torch.__name__)
"""


def test_a_model_is_saved_and_loaded_without_importing_torch(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    done = subprocess.run(
        [sys.executable, "-P", "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["HistGradientBoostingClassifier", "torch"]

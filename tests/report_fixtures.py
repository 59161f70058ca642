"""Helpers for the report tests: a real saved model folder and an isolated predict.py run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pandas as pd

# A stand-in for the engine's self-contained module of custom classes: a transformer that the
# fitted pipeline holds, so that loading the model needs this source.
CUSTOM_MODULE = "mltrainer_report_test_custom"
CUSTOM_SOURCE = textwrap.dedent(
    '''\
    """Custom pieces a fitted pipeline may hold (test stand-in)."""
    import numpy as np
    import pandas as pd
    from sklearn.base import BaseEstimator, TransformerMixin


    class RatioFeatures(TransformerMixin, BaseEstimator):
        """Adds the ratio of two numeric columns; escapes like \\n stay literal here."""

        def __init__(self, numerator="x1", denominator="x2"):
            self.numerator = numerator
            self.denominator = denominator

        def fit(self, X, y=None):
            return self

        def transform(self, X):
            X = pd.DataFrame(X).copy()
            ratio = X[self.numerator] / X[self.denominator].abs().clip(lower=1e-3)
            X["ratio"] = np.tanh(ratio)
            return X
    '''
)

# Top-level packages the standalone script must not import.
PROJECT_PACKAGES = ("mltrainer", "tools", "state", "server", "sandbox", "bench", CUSTOM_MODULE)

_ISOLATED_RUNNER = """
import runpy, sys
blocked = set(sys.argv[1].split(","))

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"{name} must not be imported by predict.py")
        return None

sys.meta_path.insert(0, Blocker())
script = sys.argv[2]
sys.argv = sys.argv[2:]
runpy.run_path(script, run_name="__main__")
"""


def custom_module() -> types.ModuleType:
    """The stand-in module, importable in this process under its name."""
    module = sys.modules.get(CUSTOM_MODULE)
    if module is None:
        module = types.ModuleType(CUSTOM_MODULE)
        sys.modules[CUSTOM_MODULE] = module
        exec(compile(CUSTOM_SOURCE, CUSTOM_MODULE, "exec"), module.__dict__)
    return module


def mixed_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Numeric, categorical and missing values; ``label`` has three classes, ``amount`` is numeric."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    colour = rng.choice(["red", "green", "blue"], size=rows).astype(object)
    colour[rng.random(rows) < 0.1] = np.nan
    x2[rng.random(rows) < 0.05] = np.nan
    score = x1 + 0.5 * np.nan_to_num(x2) + (colour == "red") + rng.normal(scale=0.3, size=rows)
    label = np.select([score < -0.3, score < 0.7], ["low", "mid"], "high")
    amount = 3 * x1 - np.nan_to_num(x2) + rng.normal(scale=0.2, size=rows)
    return pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "label": label, "amount": amount})


def run_isolated(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with ``-I`` (no PYTHONPATH, no user site) from ``cwd``, with every project
    package made unimportable, so it proves it stands alone."""
    return subprocess.run(
        [sys.executable, "-I", "-c", _ISOLATED_RUNNER, ",".join(PROJECT_PACKAGES), str(script),
         *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip

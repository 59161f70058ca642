"""What a model file may hold: the one allow-list of types, checked before any model is loaded.

skops loads without question only the types it trusts by default (scikit-learn's estimators and
plain containers); every other type a file names must be trusted by the caller, and a file can
name any importable callable (``builtins.exec``, ``numpy.testing...runstring``). So the loader
trusts exactly the concrete types the engine saves, listed here -- never a module prefix, and
never the list in ``meta.json`` beside the model, which is as easy to change as the model.
The standalone predict.py gets this list inlined. tests/test_model_safety.py trains every
family and task and checks that this list is exactly what the engine's models hold.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from mltrainer.state.errors import UntrustedModel

CUSTOM_MODULE = "mltrainer.tools.training.engine.custom"
# Where the classes that models saved by earlier versions name live now: mltrainer 0.1.0
# installed its folders as top-level packages (tools.training...).
LEGACY_MODULES = {"tools.training.engine.custom": CUSTOM_MODULE}

TRUSTED_TYPES: tuple[str, ...] = (
    # The engine's own classes (engine/custom), under their stable module name.
    f"{CUSTOM_MODULE}.AsFloat",
    f"{CUSTOM_MODULE}.BlendModel",
    f"{CUSTOM_MODULE}.ChangeRegressor",
    f"{CUSTOM_MODULE}.DatetimeFeatures",
    f"{CUSTOM_MODULE}.ForecastModel",
    f"{CUSTOM_MODULE}.HGBClassifierModel",
    f"{CUSTOM_MODULE}.HGBRegressorModel",
    f"{CUSTOM_MODULE}.MeanRegressor",
    f"{CUSTOM_MODULE}.SeasonalNaive",
    f"{CUSTOM_MODULE}.Stringify",
    f"{CUSTOM_MODULE}.TextTfidf",
    f"{CUSTOM_MODULE}.TransformedTarget",
    f"{CUSTOM_MODULE}.XGBClassifierModel",
    f"{CUSTOM_MODULE}.XGBRegressorModel",
    # What fitted scikit-learn pipelines hold beyond skops' defaults. functools.partial wraps
    # a function that skops checks on its own (check_array, below).
    "functools.partial",
    "numpy.dtype",
    "scipy.sparse._csr.csr_matrix",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",  # k-NN on a few dense columns builds
    "sklearn.neighbors._kd_tree.KDTree",  # a KD-tree with this metric
    "sklearn.model_selection._split.KFold",
    "sklearn.tree._tree.Tree",
    "sklearn.utils.validation.check_array",
)


def current_name(name: str) -> str:
    """A type's name as this version knows it (a legacy module name mapped to today's)."""
    module, _, type_name = name.rpartition(".")
    return f"{LEGACY_MODULES.get(module, module)}.{type_name}"


def refused_types(names: Iterable[str]) -> list[str]:
    """The names that are not on the allow-list, sorted."""
    allowed = frozenset(TRUSTED_TYPES)
    return sorted({name for name in names if current_name(name) not in allowed})


_import_lock = threading.Lock()


# Packages skops' import would load for nothing (see ``skops_io``).
HIDDEN_FROM_SKOPS = frozenset({"torch", "pytest"})


class _Absent(importlib.abc.MetaPathFinder):
    """Makes ``names`` absent to one thread: its imports of them fail as if they were not
    installed; other threads, and ``sys.modules``, are untouched."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self.thread = threading.get_ident()

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.partition(".")[0] in self.names and threading.get_ident() == self.thread:
            raise ModuleNotFoundError(f"No module named {name!r} (while importing skops)")
        return None


def skops_io() -> ModuleType:
    """``skops.io``, imported without importing torch or pytest.

    Importing skops lists scikit-learn's estimators, which imports every scikit-learn package,
    among them its array-API wrapper of torch and its testing helpers, which import pytest:
    where they are installed (torch by the ``deep`` extra, pytest in many environments), the
    first model saved or loaded in a process would import them, 200 MB and 2 s for torch,
    6 MB and 0.4 s for pytest, in the worker and in the server, for libraries no model of the
    engine holds. While skops is imported they are absent to the importing thread; the
    listing skips the wrapper that then fails to import, the helpers go without pytest's
    marks, and neither holds an estimator, so skops trusts the same types either way. A
    process that imported them already pays nothing more.
    """
    with _import_lock:
        if "skops.io" not in sys.modules:
            finder = _Absent(HIDDEN_FROM_SKOPS - sys.modules.keys())
            sys.meta_path.insert(0, finder)
            try:
                import skops.io
            finally:
                sys.meta_path.remove(finder)
        import skops.io
    return skops.io


def checked_types(source: str, *, data: bytes | None = None, file: Path | None = None) -> list[str]:
    """The types of a skops file (its ``data``, or the ``file``) to pass to
    ``skops.io.loads(trusted=...)``.

    Raises :class:`UntrustedModel` when any of them is not on the allow-list.
    """
    found = skops_io().get_untrusted_types(data=data, file=file)
    refused = refused_types(found)
    if refused:
        shown = ", ".join(refused[:3]) + (" ..." if len(refused) > 3 else "")
        raise UntrustedModel(
            f"Refusing to load {source}: it holds types outside the allow-list of what "
            f"models are made of ({shown}).",
            next_step="Only load models this server trained; train the model again.",
        )
    return list(found)

#!/usr/bin/env python3
"""Predict with the model saved beside this file, without mltrainer installed.

    python predict.py input.csv output.csv      (CSV or Parquet, by file extension)

Needs pandas, numpy, scikit-learn and skops (and xgboost or pyarrow if the model or files need
them). Writes a `prediction` column and, for classifiers, one `proba_<class>` column per class,
one row per input row, in order.

model.skops is loaded only if it still has the sha256 it had when it was saved, and if every
type it names is on TRUSTED_TYPES, the list of what mltrainer's models are made of.
"""

# This file is the template mltrainer fills in (standalone.py) and writes beside each model as
# predict.py; it is linted and type-checked as a module of mltrainer, but imports nothing from it.

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# -- Generated: mltrainer replaces each of these five lines when it writes predict.py. --------
GENERATED_ON = "never: this is the template"
MODEL_SHA256 = ""
CUSTOM_MODULE = "mltrainer.tools.training.engine.custom"
CUSTOM_SOURCES: tuple[str, ...] = ()
TRUSTED_TYPES: tuple[str, ...] = ()
# -- End of the generated part. -----------------------------------------------------------------

HERE = Path(__file__).resolve().parent
MODEL_FILE = HERE / "model.skops"
META_FILE = HERE / "meta.json"


def register_custom_module() -> None:
    """The classes the model was built from, as the module the model file names."""
    if not CUSTOM_SOURCES:
        return
    module = types.ModuleType(CUSTOM_MODULE)
    module.__file__ = str(HERE / "predict.py")
    sys.modules[CUSTOM_MODULE] = module  # before exec: dataclasses and pickling look it up
    for index, source in enumerate(CUSTOM_SOURCES):
        exec(compile(source, f"<{CUSTOM_MODULE} part {index}>", "exec"), module.__dict__)


def load_model() -> Any:
    import skops.io

    data = MODEL_FILE.read_bytes()  # read once: what is checked is what is loaded
    if MODEL_SHA256 and hashlib.sha256(data).hexdigest() != MODEL_SHA256:
        sys.exit(f"refusing to load {MODEL_FILE.name}: it changed since the model was saved")
    register_custom_module()
    untrusted = skops.io.get_untrusted_types(data=data)
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        sys.exit(f"refusing to load {MODEL_FILE.name}: unexpected types {refused}")
    return skops.io.loads(data, trusted=untrusted)


def read_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path)


def write_table(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def predict(model: Any, meta: dict[str, Any], rows: pd.DataFrame) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    features = meta.get("features") or list(rows.columns)
    missing = [name for name in features if name not in rows.columns]
    if missing:
        sys.exit(f"the input lacks columns the model needs: {missing}")
    X = rows[features]
    result = pd.DataFrame({"prediction": np.asarray(model.predict(X))})
    classes = meta.get("classes") or []
    if classes and hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(X))
        for index, name in enumerate(classes):
            result[f"proba_{name}"] = proba[:, index]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("input", type=Path, help="CSV or Parquet file with the input columns")
    parser.add_argument("output", type=Path, help="where to write predictions (CSV or Parquet)")
    args = parser.parse_args(argv)
    meta = json.loads(META_FILE.read_text())
    rows = read_table(args.input)
    result = predict(load_model(), meta, rows)
    write_table(result, args.output)
    print(f"wrote {len(result)} predictions to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

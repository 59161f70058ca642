"""The AutoML benchmark's harness: a real (tiny) run through subprocesses, and its scoring."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.automl.scoring import Predictions, compare, score

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command

REPO = Path(__file__).resolve().parent.parent


def test_a_tiny_run_writes_tables_and_records(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.automl.run", "--datasets", "diabetes,breast_cancer",
         "--contestants", "ours,hgb", "--budget", "5", "--out-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    records = json.loads((tmp_path / "results.json").read_text())["records"]
    by_pair = {(r["dataset"], r["contestant"]): r for r in records}
    assert len(by_pair) == 4
    for (_, contestant), record in by_pair.items():
        assert record["status"] in ("ok", "skipped"), record
        assert record["peak_mb"] > 50
        if contestant != "ours":
            assert record["status"] == "ok"
    assert by_pair[("breast_cancer", "hgb")]["scores"]["roc_auc"] > 0.9
    assert by_pair[("diabetes", "hgb")]["scores"]["rmse"] > 0
    table = (tmp_path / "results.md").read_text()
    assert "| diabetes | regression |" in table
    assert "vs hgb:" in table
    assert (tmp_path / "logs" / "diabetes.hgb.log").exists()


def test_unknown_names_are_refused() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.automl.run", "--datasets", "nope"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert completed.returncode != 0
    assert "unknown dataset: nope" in completed.stderr


def test_scores_align_probabilities_by_class_name() -> None:
    y_true = pd.Series(["b", "a", "b", "c"])
    # Columns in another order than sorted; a class missing from the predictions counts as 0.
    proba = pd.DataFrame({"b": [0.8, 0.1, 0.7, 0.2], "a": [0.2, 0.9, 0.3, 0.1]})
    scores = score("multiclass", y_true, Predictions(labels=np.array(["b", "a", "b", "a"]),
                                                     proba=proba), None)  # fmt: skip
    assert scores["accuracy"] == pytest.approx(0.75)
    assert np.isfinite(scores["log_loss"])
    binary = score(
        "binary",
        pd.Series(["no", "yes", "yes"]),
        Predictions(labels=np.array(["no", "yes", "no"]),
                    proba=pd.DataFrame({"yes": [0.1, 0.9, 0.4], "no": [0.9, 0.1, 0.6]})),
        "yes",
    )  # fmt: skip
    assert binary["roc_auc"] == pytest.approx(1.0)


def test_compare_counts_near_scores_as_ties() -> None:
    assert compare(0.9, 0.9005) == "tie"
    assert compare(0.91, 0.9) == "win"
    assert compare(0.5, 0.6) == "loss"

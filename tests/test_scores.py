"""The hot-loop scores (tools/scores.py) give scikit-learn's values, and the judge that uses them
on several threads gives the same verdict as on one (#17: the profile's time in a 15 s call)."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from bench import traps
from mltrainer.tools.machine import CORES_ENV
from mltrainer.tools.profiling import leakage
from mltrainer.tools.profiling.profile import profile
from mltrainer.tools.scores import balanced_accuracy, binary_auc


@pytest.mark.parametrize("rows", [7, 500, 20_000])
def test_binary_auc_is_scikit_learns_with_ties_counted_half(rows: int) -> None:
    rng = np.random.default_rng(rows)
    truth = rng.random(rows) < 0.3
    truth[:2] = [True, False]
    for scores in (
        rng.normal(size=rows) + truth,  # distinct values
        np.round(rng.random(rows) + 0.4 * truth, 1),  # many ties
        rng.integers(0, 3, rows),  # integers, mostly ties
        np.zeros(rows),  # one value: 0.5
    ):
        assert binary_auc(truth, scores) == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)
    codes = truth.astype(int)  # the judge's class codes: 1 is the positive class
    assert binary_auc(codes == 1, -codes) == pytest.approx(0.0)


def test_binary_auc_of_a_single_class_is_nan_like_scikit_learns() -> None:
    one_class = np.ones(10, dtype=bool)
    assert np.isnan(binary_auc(one_class, np.arange(10.0)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns that the score is undefined
        assert np.isnan(roc_auc_score(one_class, np.arange(10.0)))


def test_balanced_accuracy_is_scikit_learns() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 1000)
    cases = [
        rng.integers(0, 4, 1000),  # every class
        np.where(truth == 3, 0, truth),  # class 3 never predicted
        np.where(truth == 2, 5, truth),  # a label that never occurs is predicted
    ]
    for predicted in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn warns about the absent class
            expected = balanced_accuracy_score(truth, predicted)
        assert balanced_accuracy(truth, predicted) == pytest.approx(expected, abs=1e-12)
    words = np.array(["a", "b", "b", "c"])
    assert balanced_accuracy(words, np.array(["a", "b", "c", "c"])) == pytest.approx(
        balanced_accuracy_score(words, np.array(["a", "b", "c", "c"]))
    )


@pytest.mark.parametrize("trap", [traps.leak, traps.drift])
def test_the_judge_says_the_same_on_one_thread_and_on_several(
    trap: Callable[[int], traps.Trap], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = trap(0)
    path = tmp_path / "train.csv"
    found.train.to_csv(path, index=False)
    verdicts = []
    for cores in (1, 4):  # the columns judged one at a time, then side by side, on any machine
        monkeypatch.setattr(leakage, "n_workers", lambda cores=cores: cores)
        verdicts.append(profile(path, found.target).model_dump(exclude={"elapsed_s"}))
    assert verdicts[0] == verdicts[1]
    said = {(w["kind"], w["column"]) for w in verdicts[1]["warnings"]}
    if trap is traps.leak:  # the checks ran: every planted leak is named
        assert {("leakage", c) for c in ("refund_issued", "review_score", "status_copy")} <= said
    else:
        assert verdicts[1]["drift"]["drifts"] and ("time_drift", "date") in said


def test_the_checks_use_no_more_threads_than_the_job_has_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def thread_of(_: int) -> int:
        time.sleep(0.01)  # long enough for a second thread to take the next item
        return threading.get_ident()

    monkeypatch.setenv(CORES_ENV, "1")  # what a fan-out's trial worker is given
    assert set(leakage.on_threads(thread_of, list(range(8)))) == {threading.get_ident()}
    monkeypatch.setattr(leakage, "n_workers", lambda: 3)  # a machine with three cores
    assert 1 < len(set(leakage.on_threads(thread_of, list(range(24))))) <= 3

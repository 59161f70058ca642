"""The time budget is a promise from the call (#17): the engine's clock starts when the job was
created, less what the stages after the fit need, leaving the engine a floor of its own;
the search always gets one cross-validated candidate; the baseline fits on a sample, within a
deadline of its own, so the first model comes within seconds."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mltrainer.state.models import JobRecord, utcnow
from mltrainer.state.settings import Settings
from mltrainer.tools.jobs.train import (
    AFTER_FIT_CLASS_S,
    AFTER_FIT_ROW_S,
    AFTER_FIT_S,
    CHARGED_SHARE,
    ENGINE_FLOOR_S,
    ENGINE_MIN_S,
    budget_clock,
)
from mltrainer.tools.profiling.judge import judge
from mltrainer.tools.training.automl import fit_automl
from mltrainer.tools.training.engine import tabular_start as tabular
from mltrainer.tools.training.engine.tabular import TabularRun
from mltrainer.tools.training.planner import build_plan
from mltrainer.tools.training.progress import NullReporter
from mltrainer.tools.training.request import BUDGET_OVERRUN, TrainRequest
from tests.conftest import connect, payload, train_until_done
from tests.engine_fixtures import RecordingReporter, mixed_classification


def request(**fields: object) -> TrainRequest:
    return TrainRequest.model_validate({"dataset": "test", "time_budget_s": 5, **fields})


def decisions(result: object, stage: str) -> list[str]:
    return [d.decision for d in result.decisions if d.stage == stage]  # type: ignore[attr-defined]


# -- the clock ---------------------------------------------------------------------------------
def test_budget_counts_the_seconds_before_the_fit_and_after_it() -> None:
    job = JobRecord(id="job_x", kind="train", attempt=1, created_at=utcnow() - timedelta(seconds=4))
    clock = budget_clock(job, 300, rows=10_000)
    assert clock is not None
    charged = time.monotonic() - clock
    # 4 s since the call and the reserve for saving; the clock only moves on, so never less.
    assert charged >= 4 + AFTER_FIT_S + 10_000 * AFTER_FIT_ROW_S


def test_a_slower_machine_reserves_more_for_the_stages_after_the_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Saving, the report and the plots are Python code: on a machine that runs it twice as
    slowly, twice the fixed reserve is charged (the rows' part is I/O, not scaled)."""
    from mltrainer.tools.jobs import train

    job = JobRecord(id="job_x", kind="train", attempt=1, created_at=utcnow() - timedelta(seconds=4))
    charged = {}
    for pace in (1.0, 2.0):
        monkeypatch.setattr(train, "pace", lambda pace=pace: pace)
        clock = budget_clock(job, 300, rows=10_000)
        assert clock is not None
        charged[pace] = time.monotonic() - clock
    assert charged[2.0] - charged[1.0] == pytest.approx(AFTER_FIT_S, abs=0.5)


def test_many_classes_reserve_more_for_the_stages_after_the_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A model of 26 classes saves a tree per class and round, and its confusion matrix has 676
    cells: its reserve grows by AFTER_FIT_CLASS_S a class beyond two (a binary target's is the
    base one), scaled by the machine's pace like the rest of the fixed part."""
    from mltrainer.tools.jobs import train

    monkeypatch.setattr(train, "pace", lambda: 1.5)
    job = JobRecord(id="job_x", kind="train", attempt=1, created_at=utcnow() - timedelta(seconds=4))

    def charged(classes: int) -> float:
        clock = budget_clock(job, 300, rows=10_000, classes=classes)
        assert clock is not None
        return time.monotonic() - clock

    assert charged(2) == pytest.approx(charged(0), abs=0.1)
    assert charged(26) - charged(2) == pytest.approx(24 * AFTER_FIT_CLASS_S * 1.5, abs=0.1)


def test_pace_is_bounded_and_measures_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    from mltrainer.tools import machine

    assert 1.0 <= machine.pace() <= machine.PACE_MAX
    monkeypatch.setattr(machine, "PACE_REFERENCE_S", 1e-9)  # any machine is slower than that
    assert machine.pace() == machine.PACE_MAX
    monkeypatch.setattr(machine, "PACE_REFERENCE_S", 10.0)  # and faster than that
    assert machine.pace() == 1.0


def test_the_reserve_for_saving_grows_with_rows_as_measured() -> None:
    """7.5M rows took 8 s to save and report: a 300 s call 15 s in leaves the engine most of
    its budget (a reserve of 2e-5 s a row kept 153 s back, and the job ended at 133 s)."""
    job = JobRecord(
        id="job_x", kind="train", attempt=1, created_at=utcnow() - timedelta(seconds=15)
    )
    clock = budget_clock(job, 300, rows=7_500_000)
    assert clock is not None
    left = clock + 300 - time.monotonic()
    assert 250 < left < 300 - 15 - 8


def engine_time(budget: float, spent: float, monkeypatch: pytest.MonkeyPatch) -> float:
    """The engine's seconds in a call ``spent`` seconds old, on a machine of pace 1."""
    from mltrainer.tools.jobs import train

    monkeypatch.setattr(train, "pace", lambda: 1.0)
    created = utcnow() - timedelta(seconds=spent)
    clock = budget_clock(
        JobRecord(id="job_x", kind="train", attempt=1, created_at=created), budget, 100
    )
    assert clock is not None
    return clock + budget - time.monotonic()


@pytest.mark.parametrize(
    ("budget", "kept"), [(5, 3.75), (8, 6.0), (10, 6.5), (15, ENGINE_MIN_S), (60, ENGINE_MIN_S)]
)
def test_however_slow_the_start_the_engine_keeps_its_minimum(
    budget: float, kept: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An hour since the call: all but the engine's minimum is charged; a budget shorter than
    the promise's keeps its floor (three quarters of it, at most ENGINE_FLOOR_S)."""
    assert CHARGED_SHARE == 0.25
    left = engine_time(budget, 3600, monkeypatch)
    assert kept - 1 < left <= kept  # generous: a loaded machine


def test_a_slow_start_leaves_the_engine_its_floor_when_the_promise_allows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """15 s: the stages before the fit took 5 s, the reserve after it is 3 s; the floor (6.5 s)
    still ends the call within 16.5 s. After 8 s, the floor would end it at 17.5 s: the engine
    has the 5.5 s left within the +10 %. After 9.5 s, only its minimum is left."""
    assert ENGINE_FLOOR_S == 6.5 and AFTER_FIT_S == 3.0 and BUDGET_OVERRUN == 0.1
    assert engine_time(15, 0, monkeypatch) == pytest.approx(12, abs=0.5)  # nothing charged yet
    assert engine_time(15, 5, monkeypatch) == pytest.approx(ENGINE_FLOOR_S, abs=0.5)
    assert engine_time(15, 8, monkeypatch) == pytest.approx(16.5 - 8 - 3, abs=0.5)
    assert engine_time(15, 9.5, monkeypatch) == pytest.approx(ENGINE_MIN_S, abs=0.5)
    assert engine_time(60, 30, monkeypatch) == pytest.approx(60 - 30 - 3, abs=0.5)


def test_resumed_attempt_starts_its_budget_afresh() -> None:
    job = JobRecord(id="job_x", kind="train", attempt=2, created_at=utcnow() - timedelta(hours=1))
    assert budget_clock(job, 60, rows=100) is None


# -- the guaranteed candidate ------------------------------------------------------------------
def ending_now(budget: float = 20) -> float:
    """A clock whose ``budget`` ends now (a slow worker start, a loaded machine): the search's
    deadline, which keeps time for the final fits, has passed; the budget's +10 % has not."""
    return time.monotonic() - budget


def test_a_search_the_clock_left_without_time_still_cross_validates_one_candidate() -> None:
    """The search deadline has passed before the search starts, yet the cheapest family's first
    configuration is evaluated (it ends within the budget's +10 %), so the final model is a
    searched one, not the baseline alone. (Only linear models: the baseline is the same
    configuration on the same fold, so it cannot beat the candidate.)"""
    frame = mixed_classification(rows=300)
    reporter = RecordingReporter()
    result = fit_automl(
        frame,
        request(target="label", models=["linear"], time_budget_s=20),
        reporter,
        clock_start=ending_now(),
    )

    assert result.search_stopped == "time"
    said = decisions(result, "search")
    assert "not started" in said  # no candidate could end in time: none was begun in vain
    assert any("candidate past the search deadline" in d for d in said)
    assert len(result.leaderboard) == 1 and result.leaderboard[0].family == "linear"
    assert result.leaderboard[0].weight == 1.0
    assert "keep the baseline" not in decisions(result, "search")
    assert reporter.candidates() == 1


def xor_frame(rows: int = 400) -> pd.DataFrame:
    """A label no linear model can learn (the sign of a product) and trees learn at once."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=rows), rng.normal(size=rows)
    return pd.DataFrame({"a": a, "b": b, "label": np.where(a * b > 0, "yes", "no")})


def test_a_better_baseline_is_kept_over_the_guaranteed_candidate_which_stays_listed() -> None:
    result = fit_automl(
        xor_frame(),
        request(target="label", time_budget_s=20),
        NullReporter(),
        clock_start=ending_now(),
    )

    (kept,) = [d for d in result.decisions if d.decision == "keep the baseline"]
    assert "run past the deadline" in kept.reason and "first fold" in kept.reason
    assert len(result.leaderboard) == 1 and result.leaderboard[0].weight == 0.0
    assert result.holdout["roc_auc"] > 0.8  # the trees' baseline, not the linear candidate


def test_a_search_with_time_gets_no_extra_candidate() -> None:
    frame = mixed_classification(rows=300)
    result = fit_automl(frame, request(target="label", time_budget_s=20), NullReporter())
    said = decisions(result, "search")
    assert "not started" not in said
    assert not any("past the search deadline" in d for d in said)
    assert len(result.leaderboard) > 1


@pytest.mark.anyio
async def test_a_five_second_job_through_the_client_has_a_leaderboard(
    settings: Settings, churn_csv: Path
) -> None:
    async with connect("memory", settings) as client:
        done = payload(
            await train_until_done(
                client,
                {"dataset": str(churn_csv), "target": "label", "time_budget_s": 5, "plots": False},
            )
        )
    assert done["status"] == "succeeded", done
    assert len(done["result"]["leaderboard"]) >= 1, done["result"]["decisions"]


def test_a_guaranteed_candidate_that_would_overrun_the_budget_is_not_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Large or many-class data on a short budget, or a slow start: the baseline's own fit says
    the cheapest candidate would take longer than allowed (here: the budget ended an hour ago,
    and a short one may run past its end for no time at all), so the baseline stays and the
    decisions say why."""
    monkeypatch.setattr(tabular, "GUARANTEE_SHARE", 0.0)
    monkeypatch.setattr(tabular, "GUARANTEE_MIN_S", 0.0)
    long_ago = time.monotonic() - 3600
    frame = mixed_classification(rows=300)
    result = fit_automl(frame, request(target="label"), NullReporter(), clock_start=long_ago)

    (skipped,) = [d for d in result.decisions if "past the search deadline" in d.decision]
    assert (
        skipped.decision.startswith("no linear candidate") and "would take about" in skipped.reason
    )
    assert "keep the baseline" in decisions(result, "search")
    assert result.leaderboard == []


def test_the_guarantee_estimate_grows_with_the_baseline_time_and_the_rows() -> None:
    run = run_for(mixed_classification(rows=600), target="label", time_budget_s=15)
    assert run.guarantee_estimate("linear") == 0.0  # no baseline yet: nothing to go by
    run.baseline_cost = (1.0, 100, "hist_gradient_boosting")
    one = run.guarantee_estimate("linear")
    run.baseline_cost = (2.0, 100, "hist_gradient_boosting")
    assert run.guarantee_estimate("linear") == pytest.approx(2 * one)
    run.baseline_cost = (1.0, 50, "hist_gradient_boosting")
    assert run.guarantee_estimate("linear") == pytest.approx(2 * one)
    assert run.guarantee_estimate("random_forest") > one  # a dearer family


def test_the_guarantee_prices_the_families_that_fit_per_class_by_the_classes() -> None:
    """A boosted round grows a tree per class and a multinomial linear model a weight vector per
    class: on many classes neither is the cheap candidate it is on two (150 classes: a linear
    candidate took 7 s past a 15 s job's search deadline, where extra trees' baseline had
    taken 3 s), and the cheapest family is one whose cost does not grow with them."""
    from mltrainer.tools.training.engine import families as fam

    for few in (0, 2, fam.FOREST_CLASSES):  # regression, two classes, a few: the priors stand
        assert fam.relative_cost("linear", few) == fam.RELATIVE_COST["linear"]
        assert fam.relative_cost("xgboost", few) == fam.RELATIVE_COST["xgboost"]
    assert fam.relative_cost("linear", 150) > fam.relative_cost("extra_trees", 150)
    assert fam.relative_cost("xgboost", 26) > 5 * fam.relative_cost("xgboost", 2)
    assert fam.relative_cost("knn", 150) == fam.RELATIVE_COST["knn"]

    two = run_for(letters(600, 2), target="label", time_budget_s=15)
    many = run_for(letters(600, 150), target="label", time_budget_s=15)
    for run in (two, many):
        run.baseline_cost = (1.0, 100, "extra_trees")
    assert two.guarantee_estimate("linear") < two.guarantee_estimate("extra_trees")
    assert many.guarantee_estimate("linear") > many.guarantee_estimate("extra_trees")


def test_clustering_whose_clock_ran_out_still_compares_the_first_cluster_counts() -> None:
    rng = np.random.default_rng(0)
    centres = np.repeat([[0.0, 0.0], [8.0, 8.0], [0.0, 8.0]], 40, axis=0)
    points = centres + rng.normal(scale=0.5, size=centres.shape)
    frame = pd.DataFrame(points, columns=["a", "b"])
    long_ago = time.monotonic() - 3600
    result = fit_automl(frame, request(task="clustering"), NullReporter(), clock_start=long_ago)

    assert result.holdout["n_clusters"] == 3  # three well-separated blobs
    assert {e.params["n_clusters"] for e in result.leaderboard} >= {2, 3, 4}


# -- the baseline ------------------------------------------------------------------------------
def run_for(frame: pd.DataFrame, **fields: object) -> TabularRun:
    plan = build_plan(frame, request(**fields), None)
    return TabularRun(frame, plan, NullReporter(), time.monotonic())


def test_the_baseline_fits_on_a_sample_and_says_so() -> None:
    frame = mixed_classification(rows=12_000)
    result = fit_automl(frame, request(target="label"), NullReporter())
    (said,) = [d.reason for d in result.decisions if d.stage == "baseline"]
    assert f"fitted on {tabular.BASELINE_ROWS[0]} of its" in said


def letters(rows: int, classes: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    label = rng.integers(0, classes, rows)
    return pd.DataFrame({"x": label + rng.normal(size=rows), "label": label.astype(str)})


def test_many_classes_give_a_boosted_baseline_fewer_rows() -> None:
    """A boosting round grows a tree per class; a forest's tree serves every class."""
    two = run_for(letters(600, 2), target="label", time_budget_s=15)
    many = run_for(letters(600, 12), target="label", time_budget_s=15)
    boosted = "hist_gradient_boosting"
    assert two.baseline_rows(boosted) == 15 * tabular.BASELINE_ROWS_PER_S
    assert many.baseline_rows(boosted) < two.baseline_rows(boosted)
    assert many.baseline_rows(boosted) >= tabular.BASELINE_ROWS[0] // 2
    assert many.baseline_rows("extra_trees") == two.baseline_rows(boosted)


def test_many_classes_start_from_extra_trees() -> None:
    """Beyond FOREST_CLASSES classes the planner puts extra trees first, the baseline is one,
    and the decision says why; a time axis keeps linear first."""
    from mltrainer.tools.training.engine.families import FOREST_CLASSES

    frame = letters(3000, FOREST_CLASSES + 7)
    result = fit_automl(frame, request(target="label", time_budget_s=10), NullReporter())
    assert result.plan.families[0].name == "extra_trees"
    assert "extra_trees first" in decisions(result, "families")
    assert decisions(result, "baseline")[0] == "extra_trees"
    few = run_for(letters(600, FOREST_CLASSES), target="label", time_budget_s=15)
    assert few.plan.families[0].name == "hist_gradient_boosting"
    dated = letters(600, 12)  # the classes follow one another in time: validated in order
    dated = dated.sort_values("label", key=lambda c: c.astype(int), ignore_index=True)
    dated["day"] = pd.date_range("2020-01-01", periods=600, freq="D")
    verdict = judge(dated, "label")
    plan = build_plan(dated, request(target="label", time_budget_s=15), verdict)
    assert plan.families[0].name == "linear"


def test_a_wide_table_starts_from_the_linear_family() -> None:
    """A boosted model bins every feature before its first tree (seconds for 2,000 features):
    from WIDE_FEATURES features on, linear is the baseline and the search's first family."""
    from mltrainer.tools.training.engine.families import WIDE_FEATURES

    rng = np.random.default_rng(0)
    values = rng.normal(size=(300, WIDE_FEATURES))
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(WIDE_FEATURES)])
    frame["label"] = (values[:, :5].sum(axis=1) > 0).astype(int)
    plan = build_plan(frame, request(target="label", time_budget_s=15), judge(frame, "label"))
    assert plan.families[0].name == "linear"
    (why,) = [d.reason for d in plan.decisions if d.decision == "linear first"]
    assert f"{WIDE_FEATURES} features" in why
    narrow = frame.iloc[:, WIDE_FEATURES - 20 :]
    plan = build_plan(narrow, request(target="label", time_budget_s=15), judge(narrow, "label"))
    assert plan.families[0].name == "hist_gradient_boosting"


def test_the_baseline_deadline_is_seconds_away_and_never_already_past() -> None:
    run = run_for(mixed_classification(rows=300), target="label", time_budget_s=600)
    away = run.baseline_deadline() - time.monotonic()
    assert tabular.BASELINE_MAX_S - 0.5 < away <= tabular.BASELINE_MAX_S  # not 0.15 × 600 s
    run.end = time.monotonic() - 60  # the budget has run out: a usable model all the same
    assert run.baseline_deadline() - time.monotonic() > tabular.BASELINE_MIN_S / 2


# -- the final fit on large data -----------------------------------------------------------------
def fit_costing(
    monkeypatch: pytest.MonkeyPatch, times_the_time_left: float, **fields: object
) -> object:
    """A run whose fit on every training row would take ``times_the_time_left`` times the time
    left (the estimate is the engine's one seam with the clock): 6000 rows, searched on 1000."""
    frame = mixed_classification(rows=6000)
    plan = build_plan(frame, request(target="label", models=["linear"], time_budget_s=20, **fields))
    plan.max_search_rows = 1000

    def estimate(run: TabularRun, members: object, n_rows: int | None = None) -> float:
        share = (n_rows or len(run.data.y)) / len(run.data.train)
        return times_the_time_left * max(run.time_to_fit(), 1.0) * share

    monkeypatch.setattr(TabularRun, "refit_estimate", estimate)
    return TabularRun(frame, plan, NullReporter(), time.monotonic()).run()


def sampled_fit(result: object) -> tuple[int, str]:
    """How many training rows the final fit had, by the decision that says so, and its reason."""
    (said,) = [
        d
        for d in result.decisions  # type: ignore[attr-defined]
        if d.stage == "ensemble" and " fitted on " in d.decision
    ]
    match = re.search(r"fitted on (\d+) of 4800 training rows$", said.decision)
    assert match, said.decision
    return int(match.group(1)), said.reason


def test_no_time_to_fit_every_training_row_fits_as_many_as_time_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = fit_costing(monkeypatch, 2.0)
    rows, reason = sampled_fit(result)
    assert 2200 <= rows <= 2400  # half, less what the clock moved on meanwhile
    assert "the time left fits about this many" in reason
    assert not result.refit  # type: ignore[attr-defined]
    assert result.holdout["roc_auc"] > 0.8  # type: ignore[attr-defined]


def test_rows_in_time_order_give_the_latest_to_the_final_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fitted_on: list[np.ndarray] = []
    fit_members = TabularRun.fit_members

    def recording(run: TabularRun, members: object, rows: np.ndarray) -> object:
        fitted_on.append(rows)
        return fit_members(run, members, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(TabularRun, "fit_members", recording)
    result = fit_costing(monkeypatch, 2.0, time_column="day")
    count = sampled_fit(result)[0]
    assert 2200 <= count <= 2400
    # the days are the rows' order: the training rows are the first 4800, the latest are last
    (final,) = [rows for rows in fitted_on if len(rows) == count]
    assert list(final) == list(range(4800 - count, 4800))
    assert result.holdout["roc_auc"] > 0.8  # type: ignore[attr-defined]


def test_too_little_time_for_more_rows_keeps_the_first_fold_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = fit_costing(monkeypatch, 100.0)
    decided = [d.decision for d in result.decisions if d.stage == "ensemble"]  # type: ignore[attr-defined]
    assert "linear#0 as fitted on its first fold" in decided
    assert not any("training rows" in d for d in decided)


# -- the kept baseline, grown --------------------------------------------------------------------
def baseline_run(seconds_left: float) -> tuple[TabularRun, tuple[float, int, str]]:
    """A fitted baseline (5000 of a fold's 15000 rows) and ``seconds_left`` times its own fit
    time before the boosting must stop."""
    run = run_for(mixed_classification(rows=25_000), target="label", models=["linear"])
    run.fit_baseline()
    assert run.baseline_cost is not None
    seconds = run.baseline_cost[0]
    run.end = time.monotonic() + seconds * seconds_left + tabular.GROW_RESERVE * run.budget
    return run, run.baseline_cost


def test_a_kept_baseline_is_refitted_on_as_many_rows_as_the_time_left_fits() -> None:
    run, (_, rows, family) = baseline_run(seconds_left=2.5)
    before = run.baseline
    assert before is not None and rows == 5000
    run.grow_baseline()

    (said,) = [d for d in run.plan.decisions if d.stage == "baseline"][1:]
    grown = re.search(r"refitted on (\d+)", said.decision + said.reason)
    assert grown, said
    assert 7500 <= int(grown.group(1)) <= 12_500  # 1.5 to 2.5 times the baseline's rows
    assert run.baseline is not None
    if said.decision.startswith(f"{family} refitted"):  # better on the same validation rows
        assert run.baseline[1] > before[1] and run.baseline[0] is not before[0]
    else:
        assert said.decision == "kept as fitted on 5000 rows" and run.baseline is before


def test_a_baseline_with_no_time_for_more_rows_stays_as_it_is() -> None:
    run, _ = baseline_run(seconds_left=1.0)  # fits fewer than 1.5 times its rows
    before = run.baseline
    run.grow_baseline()
    assert run.baseline is before
    assert len([d for d in run.plan.decisions if d.stage == "baseline"]) == 1


def test_a_baseline_the_clock_timed_at_zero_seconds_is_grown_without_error() -> None:
    """A coarse clock (Windows') can time a small baseline's fit at 0 s."""
    run, (_, rows, family) = baseline_run(seconds_left=2.5)
    run.baseline_cost = (0.0, rows, family)
    run.grow_baseline()
    said = [d for d in run.plan.decisions if d.stage == "baseline"][1:]
    assert len(said) == 1 and "refitted on 15000" in said[0].decision + said[0].reason


def test_the_search_starts_with_xgboost_and_the_baseline_stays_hist_gradient_boosting() -> None:
    """XGBoost's first configuration cross-validates faster than HistGradientBoosting's (#17):
    it leads the plan, so a short budget's search reaches a second family; the baseline is
    still the one that needs no XGBoost."""
    result = fit_automl(
        mixed_classification(rows=1500), request(target="label", time_budget_s=10), NullReporter()
    )
    assert [f.name for f in result.plan.families][:2] == ["xgboost", "hist_gradient_boosting"]
    assert decisions(result, "baseline")[0] == "hist_gradient_boosting"
    tried = [e.family for e in sorted(result.leaderboard, key=lambda e: int(e.name.split("#")[1]))]
    assert tried[0] == "xgboost"


def test_folds_that_run_one_at_a_time_must_all_fit_before_the_search_starts() -> None:
    """A forest's folds run one after another on every core: the first candidate ends when the
    last fold does, so all of them are weighed against the time left (#17: glyphs26 at 15 s
    ran its extra trees past the budget); side by side, one fold's time is."""
    forest = run_for(letters(600, 12), target="label", time_budget_s=15)
    boosted = run_for(letters(600, 2), target="label", time_budget_s=15)
    assert forest.plan.families[0].name == "extra_trees"
    assert boosted.plan.families[0].name == "hist_gradient_boosting"
    for run in (forest, boosted):
        fold_rows = len(run.problem.splits[0][0])
        run.baseline_cost = (1.0, fold_rows // 4, run.plan.families[0].name)  # ~4 s a fold
        run.search_deadline = lambda: time.monotonic() + 10.0  # type: ignore[method-assign]
    assert boosted.search_has_time()
    assert not forest.search_has_time()
    (said,) = [d for d in forest.plan.decisions if d.decision == "not started"]
    folds = len(forest.problem.splits)
    assert said.reason.startswith(f"its {folds} folds, one at a time, would take about")


def test_a_temperature_is_fitted_on_a_sample_of_many_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each step of a temperature's search is a softmax over rows x classes: on many rows it is
    fitted on TEMPERATURE_ROWS of them (seeded), and lands where the fit on all rows does."""
    from mltrainer.tools.training.engine import calibration
    from mltrainer.tools.training.engine.metrics import MetricContext

    rng = np.random.default_rng(0)
    rows, classes = 3 * calibration.TEMPERATURE_ROWS, 12
    y = rng.integers(0, classes, rows)
    logits = rng.normal(size=(rows, classes))
    logits[np.arange(rows), y] += 2.0
    proba = np.exp(2.0 * logits)  # overconfident: the temperature that fixes it is about 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    ctx = MetricContext(n_classes=classes)
    seen: list[int] = []
    real_score = calibration.score

    def counting(metric: str, truth: np.ndarray, pred: np.ndarray, c: MetricContext) -> float:
        seen.append(len(truth))
        return real_score(metric, truth, pred, c)

    monkeypatch.setattr(calibration, "score", counting)
    (sampled,) = calibration._fit(proba, y, ctx, seed=0)
    assert max(seen) == calibration.TEMPERATURE_ROWS
    assert calibration._fit(proba, y, ctx, seed=0) == [sampled]  # the same sample every time
    monkeypatch.setattr(calibration, "TEMPERATURE_ROWS", rows)
    (everything,) = calibration._fit(proba, y, ctx, seed=0)
    assert sampled == pytest.approx(everything, rel=0.03)

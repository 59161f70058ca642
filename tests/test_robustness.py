"""Robustness of the whole train → predict path, driven through a real MCP client with the
inputs real users send: odd shapes, odd files, odd names, odd targets, bad options.

Every case must end either in success with sane output (one prediction row per input row, in
order; class probabilities summing to 1) or in a clear tool error that says what to do. Never
an "Internal error", a traceback, a job left running, or a server that stops answering.

To stay fast on 2 cores, one server runs the whole campaign once (jobs run side by side, each
with a 5 s budget); each case is then its own test over the recorded outcome.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pandas as pd
import pytest
from conftest import connect, error_text, payload

from mltrainer.state.settings import Settings

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command

BUDGET_S = 5
TERMINAL = ("succeeded", "failed", "cancelled")
CAMPAIGN_DEADLINE_S = 170
N = 240  # rows of a normal-sized case

# -- datasets --------------------------------------------------------------------------------


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def base_frame(n: int = N, seed: int = 0) -> pd.DataFrame:
    """Two numeric features and a categorical one; 'label' is yes/no and learnable."""
    r = rng(seed)
    x1, x2 = r.normal(size=n), r.normal(size=n)
    colour = r.choice(["red", "green", "blue"], size=n)
    score = x1 + 0.5 * x2 + (colour == "red") + r.normal(scale=0.3, size=n)
    label = np.where(score > 0.4, "yes", "no")
    return pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "label": label})


def features_of(frame: pd.DataFrame, target: str | None) -> pd.DataFrame:
    return frame.drop(columns=[target]) if target else frame


@dataclass
class Case:
    """One user request: a training file, train_model arguments, and a file to predict on."""

    name: str
    build: Callable[[Path], tuple[dict[str, Any], Path | None]]
    # "success": must train and predict; "error": must be a clear tool error before any job;
    # "either": success, or a clear error (tool error or a failed job with a clear message).
    expect: str = "success"
    error_words: tuple[str, ...] = ()


@dataclass
class Outcome:
    train_error: str | None = None
    job: dict[str, Any] | None = None
    log: str = ""
    predict_error: str | None = None
    predict: dict[str, Any] | None = None
    predictions: pd.DataFrame | None = None
    predict_rows: int | None = None
    jobs_before: int = 0
    jobs_after: int = 0
    notes: list[str] = field(default_factory=list)


def csv_case(
    frame: pd.DataFrame,
    target: str | None,
    predict_frame: pd.DataFrame | None = None,
    name: str = "train.csv",
    **args: Any,
) -> Callable[[Path], tuple[dict[str, Any], Path | None]]:
    def build(folder: Path) -> tuple[dict[str, Any], Path | None]:
        path = folder / name
        frame.to_csv(path, index=False)
        new = predict_frame if predict_frame is not None else features_of(frame, target).head(40)
        new_path = folder / "new.csv"
        new.to_csv(new_path, index=False)
        return {"dataset": str(path), "target": target, **args}, new_path

    return build


def single_class() -> pd.DataFrame:
    frame = base_frame()
    frame["label"] = "yes"
    return frame


def nan_target() -> pd.DataFrame:
    frame = base_frame()
    frame.loc[frame.index % 9 == 4, "label"] = np.nan
    return frame


def leaky() -> pd.DataFrame:
    frame = base_frame()
    frame["outcome_copy"] = frame["label"]
    return frame


def datetimes() -> pd.DataFrame:
    frame = base_frame()
    start = pd.Timestamp("2021-01-01")
    frame["signup"] = [
        (start + pd.Timedelta(days=int(d))).strftime("%Y-%m-%d") for d in rng(3).integers(0, 900, N)
    ]
    frame["last_seen"] = [
        (start + pd.Timedelta(minutes=int(m))).isoformat() for m in rng(4).integers(0, 10**6, N)
    ]
    return frame


def free_text() -> pd.DataFrame:
    frame = base_frame()
    good = ["great service, fast delivery", "love it", "works perfectly, would buy again"]
    bad = ["terrible, broke after a day", "refund please", "slow and rude support"]
    r = rng(5)
    frame["review"] = [
        f"{r.choice(good if y == 'yes' else bad)} #{i}" for i, y in enumerate(frame["label"])
    ]
    return frame


def boolean_target() -> pd.DataFrame:
    frame = base_frame()
    frame["label"] = frame["label"] == "yes"
    return frame


def coded_classes() -> pd.DataFrame:
    frame = base_frame(300)
    frame["label"] = np.digitize(frame["x1"] + 0.5 * frame["x2"], [-0.5, 0.5])
    return frame


def unicode_target() -> pd.DataFrame:
    frame = base_frame()
    frame["label"] = frame["label"].map({"yes": "très bien ✓", "no": "pas du tout ☹"})
    return frame


def heavy_tail() -> pd.DataFrame:
    r = rng(7)
    frame = pd.DataFrame({"a": r.normal(size=N), "b": r.normal(size=N)})
    frame["y"] = np.exp(2 * frame["a"] + r.standard_t(df=1.5, size=N))
    return frame


def thirty_classes() -> pd.DataFrame:
    r = rng(8)
    k, per = 30, 20
    cls = np.repeat(np.arange(k), per)
    frame = pd.DataFrame(
        {"a": cls + r.normal(scale=0.3, size=k * per), "b": r.normal(size=k * per)}
    )
    frame["species"] = [f"sp_{c:02d}" for c in cls]
    return frame.sample(frac=1, random_state=0).reset_index(drop=True)


def clusters() -> pd.DataFrame:
    r = rng(9)
    centres = np.array([[0, 0], [6, 6], [0, 8]])
    points = np.vstack([c + r.normal(size=(80, 2)) for c in centres])
    return pd.DataFrame(points, columns=["u", "v"])


def series() -> pd.DataFrame:
    days = pd.date_range("2023-01-01", periods=200, freq="D")
    t = np.arange(200)
    sales = 100 + 0.5 * t + 10 * np.sin(2 * np.pi * t / 7) + rng(10).normal(scale=2, size=200)
    return pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "sales": sales})


def grouped() -> pd.DataFrame:
    frame = base_frame()
    frame["store"] = [f"store_{i % 12}" for i in range(N)]
    return frame


def odd_names(folder: Path) -> tuple[dict[str, Any], Path | None]:
    frame = base_frame()
    r = rng(11)
    body = pd.DataFrame(
        {
            "monthly spend": frame["x1"],
            "âge": frame["x2"],
            "x.y": frame["colour"],
            "x.y ": r.normal(size=N),
            "label": frame["label"],
        }
    )
    path = folder / "odd names.csv"
    lines = ["monthly spend,âge,x.y,x.y,dup,dup,label"]
    for row in body.itertuples(index=False):
        lines.append(f"{row[0]},{row[1]},{row[2]},{row[3]},1,2,{row[4]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    new = folder / "new.csv"
    new.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines[:31]) + "\n")
    return {"dataset": str(path), "target": "label"}, new


def semicolon_decimal_comma(folder: Path) -> tuple[dict[str, Any], Path | None]:
    frame = base_frame()
    path = folder / "european.csv"
    frame.to_csv(path, sep=";", decimal=",", index=False)
    new = folder / "new.csv"
    features_of(frame, "label").head(30).to_csv(new, sep=";", decimal=",", index=False)
    return {"dataset": str(path), "target": "label"}, new


def tsv(folder: Path) -> tuple[dict[str, Any], Path | None]:
    frame = base_frame()
    path = folder / "train.tsv"
    frame.to_csv(path, sep="\t", index=False)
    new = folder / "new.tsv"
    features_of(frame, "label").head(30).to_csv(new, sep="\t", index=False)
    return {"dataset": str(path), "target": "label"}, new


def parquet(folder: Path) -> tuple[dict[str, Any], Path | None]:
    frame = base_frame()
    frame["colour"] = frame["colour"].astype("category")
    path = folder / "train.parquet"
    frame.to_parquet(path, index=False)
    new = folder / "new.parquet"
    features_of(frame, "label").head(30).to_parquet(new, index=False)
    return {"dataset": str(path), "target": "label"}, new


def bom(folder: Path) -> tuple[dict[str, Any], Path | None]:
    frame = base_frame()[["label", "x1", "x2", "colour"]]  # the target is the first column
    path = folder / "excel.csv"
    frame.to_csv(path, index=False, encoding="utf-8-sig")
    new = folder / "new.csv"
    frame.drop(columns=["label"]).head(30).to_csv(new, index=False, encoding="utf-8-sig")
    return {"dataset": str(path), "target": "label"}, new


def reordered_extra() -> pd.DataFrame:
    frame = base_frame().head(30)
    new = frame[["colour", "x2", "x1", "label"]].copy()
    new["comment"] = "not a feature"
    return new


def unseen_and_nan() -> pd.DataFrame:
    new = features_of(base_frame(), "label").head(30).copy()
    new.loc[0:4, "colour"] = "purple"
    new.loc[5:9, "x1"] = np.nan
    new.loc[10:14, "colour"] = np.nan
    new.loc[15, ["x1", "x2", "colour"]] = np.nan
    return new


def useless_columns() -> pd.DataFrame:
    """An all-missing column, a constant column and a row identifier, side by side."""
    frame = base_frame()
    frame.insert(0, "customer_id", np.arange(1000, 1000 + N))
    frame["empty"] = np.nan
    frame["country"] = "FR"
    return frame


def dates_and_codes() -> pd.DataFrame:
    """Datetime columns and a high-cardinality categorical."""
    frame = datetimes()
    frame["zip"] = [f"Z{v:05d}" for v in rng(6).integers(0, 150, N)]
    return frame


CASES = [
    Case("single_class_target", csv_case(single_class(), "label"), "either", ("class",)),
    Case("target_with_nans", csv_case(nan_target(), "label")),
    Case(
        "one_row",
        csv_case(base_frame().head(1), "label", base_frame().drop(columns="label").head(3)),
        "either",
        error_words=("row",),
    ),
    Case(
        "five_rows",
        csv_case(base_frame(5, seed=1), "label", base_frame().drop(columns="label").head(3)),
        "either",
        error_words=("row",),
    ),
    Case("thirty_rows", csv_case(base_frame(30, seed=2), "label")),
    Case("missing_constant_and_id_columns", csv_case(useless_columns(), "label")),
    Case("leaky_column", csv_case(leaky(), "label")),
    Case("datetime_and_high_cardinality", csv_case(dates_and_codes(), "label")),
    Case("free_text_column", csv_case(free_text(), "label")),
    Case("boolean_target", csv_case(boolean_target(), "label")),
    Case("numeric_coded_classes", csv_case(coded_classes(), "label")),
    Case("unicode_target", csv_case(unicode_target(), "label")),
    Case("odd_column_names", odd_names),
    Case("semicolon_decimal_comma", semicolon_decimal_comma),
    Case("tsv", tsv),
    Case("parquet", parquet),
    Case("utf8_bom", bom),
    # One model, three files to predict on (see EXTRA_PREDICTIONS).
    Case("predict_reordered_extra_columns", csv_case(base_frame(), "label", reordered_extra())),
    Case("heavy_tailed_regression_rmse", csv_case(heavy_tail(), "y", metric="rmse")),
    Case("thirty_classes", csv_case(thirty_classes(), "species")),
    Case("clustering", csv_case(clusters(), None, clusters().iloc[::6], task="clustering")),
    Case(
        "forecast",
        csv_case(
            series(),
            "sales",
            pd.DataFrame({"day": pd.date_range("2023-07-20", periods=10).strftime("%Y-%m-%d")}),
            task="forecast",
            time_column="day",
            horizon=10,
        ),
    ),
    Case("metric_f1_linear_only", csv_case(base_frame(), "label", metric="f1", models=["linear"])),
    Case(
        "metric_log_loss_groups",
        csv_case(grouped(), "label", metric="log_loss", group_column="store"),
    ),
    Case(
        "metric_accuracy_exclude",
        csv_case(
            base_frame(),
            "label",
            features_of(base_frame(), "label").drop(columns="x2").head(30),
            metric="accuracy",
            exclude_columns=["x2"],
        ),
    ),
    Case("metric_mae", csv_case(heavy_tail(), "y", metric="mae")),
    Case(
        "metric_invalid",
        csv_case(base_frame(), "label", metric="accuracy_score_v2"),
        "error",
        error_words=("accuracy_score_v2",),
    ),
    Case(
        "metric_for_wrong_task",
        csv_case(base_frame(), "label", metric="rmse"),
        "error",
        error_words=("rmse",),
    ),
    Case(
        "models_unknown_family",
        csv_case(base_frame(), "label", models=["hist_gradient_boosting", "catboostt"]),
        "error",
        error_words=("catboostt",),
    ),
]
# Further files predicted with the model of a case: unseen categories and missing values.
EXTRA_PREDICTIONS = {"predict_unseen_categories_and_nans": "predict_reordered_extra_columns"}
BY_NAME = {case.name: case for case in CASES}

# -- the campaign ----------------------------------------------------------------------------


def read_predictions(path: str) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


async def run_campaign(settings: Settings, folder: Path) -> dict[str, Outcome]:
    outcomes = {case.name: Outcome() for case in CASES}
    inputs: dict[str, Path | None] = {}
    async with connect("memory", settings) as client:

        async def count_jobs() -> int:
            return int(payload(await client.call_tool("list_jobs", {"limit": 500}))["count"])

        for case in CASES:
            case_dir = folder / case.name
            case_dir.mkdir(parents=True)
            args, new_path = case.build(case_dir)
            inputs[case.name] = new_path
            outcome = outcomes[case.name]
            outcome.jobs_before = await count_jobs()
            args = {k: v for k, v in args.items() if v is not None or k != "target"}
            result = await client.call_tool(
                "train_model", {**args, "time_budget_s": BUDGET_S, "wait_s": 0}
            )
            outcome.jobs_after = await count_jobs()
            if result.is_error:
                outcome.train_error = error_text(result)
            else:
                outcome.job = payload(result)
                if case.expect == "error":  # wrongly accepted: recorded, and no need to run it
                    await client.call_tool("cancel_job", {"job_id": outcome.job["job_id"]})

        deadline = anyio.current_time() + CAMPAIGN_DEADLINE_S
        for case in CASES:
            outcome = outcomes[case.name]
            if outcome.job is None:
                continue
            while True:  # no call may wait past 50 s: poll until the job ends or time is up
                wait = min(45.0, max(1.0, deadline - anyio.current_time()))
                outcome.job = payload(
                    await client.call_tool(
                        "job_status", {"job_id": outcome.job["job_id"], "wait_s": wait}
                    )
                )
                if outcome.job["status"] in TERMINAL or anyio.current_time() >= deadline:
                    break
            log = await client.read_resource(f"mltrainer://jobs/{outcome.job['job_id']}/log")
            outcome.log = log.contents[0].text
            new_path = inputs[case.name]
            if outcome.job["status"] == "succeeded" and new_path is not None:
                await predict_into(client, outcome, new_path)
        for extra, source in EXTRA_PREDICTIONS.items():
            outcome = outcomes[extra] = Outcome(job=outcomes[source].job, log=outcomes[source].log)
            new_path = folder / f"{extra}.csv"
            unseen_and_nan().to_csv(new_path, index=False)
            if outcome.job and outcome.job["status"] == "succeeded":
                await predict_into(client, outcome, new_path)
        # The server still answers, and no job is left behind.
        for status in ("running", "queued"):
            left = payload(await client.call_tool("list_jobs", {"status": status}))
            for job in left["jobs"]:
                name = next(
                    n for n, o in outcomes.items() if o.job and o.job["job_id"] == job["job_id"]
                )
                outcomes[name].notes.append(f"job left {status} after the campaign")
                await client.call_tool("cancel_job", {"job_id": job["job_id"]})
    return outcomes


async def predict_into(client: Any, outcome: Outcome, new_path: Path) -> None:
    assert outcome.job is not None
    outcome.predict_rows = len(read_table_any(new_path))
    result = await client.call_tool(
        "predict", {"model": outcome.job["model_id"], "dataset": str(new_path)}
    )
    if result.is_error:
        outcome.predict_error = error_text(result)
    else:
        outcome.predict = payload(result)
        outcome.predictions = read_predictions(outcome.predict["predictions_path"])


def read_table_any(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    sep = "\t" if path.suffix == ".tsv" else None
    return pd.read_csv(path, sep=sep, engine="python", encoding="utf-8-sig")


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    root = tmp_path_factory.mktemp("robustness")
    data = root / "data"
    data.mkdir()
    settings = Settings(home=root / "home", data_roots=[data], max_concurrent_jobs=3)
    return anyio.run(run_campaign, settings, data)


# -- checks ----------------------------------------------------------------------------------

BAD_SIGNS = ("Internal error", "Traceback", "UnboundLocalError", "KeyError", "AttributeError")


def describe(outcome: Outcome) -> str:
    job = outcome.job or {}
    tail = "\n".join(outcome.log.splitlines()[-40:])
    return (
        f"train_error={outcome.train_error!r}\nstatus={job.get('status')} "
        f"error={job.get('error')!r}\npredict_error={outcome.predict_error!r}\n"
        f"notes={outcome.notes}\nlog tail:\n{tail}"
    )


def assert_clear(text: str, words: tuple[str, ...], where: str, context: str = "") -> None:
    bad = [sign for sign in BAD_SIGNS if sign in text]
    assert not bad, f"{where} is not a clear message: {text}\n{context}"
    assert len(text) > 40, f"{where} is too terse: {text}"
    lowered = text.lower()
    assert not words or any(w.lower() in lowered for w in words), (where, words, text)


def assert_sane_predictions(outcome: Outcome) -> pd.DataFrame:
    assert outcome.predict is not None, describe(outcome)
    frame = outcome.predictions
    assert frame is not None
    assert outcome.predict["n_rows"] == outcome.predict_rows == len(frame), describe(outcome)
    assert frame.columns[0] == "prediction"
    assert frame["prediction"].notna().all(), frame.head()
    proba = [c for c in frame.columns if c.startswith("proba_")]
    if proba:
        sums = frame[proba].sum(axis=1)
        assert np.allclose(sums, 1.0, atol=1e-6), sums.describe()
        assert ((frame[proba] >= 0) & (frame[proba] <= 1)).all().all()
        labels = {c.removeprefix("proba_") for c in proba}
        assert set(frame["prediction"].astype(str)) <= labels, (set(frame["prediction"]), labels)
    return frame


def check_outcome(case: Case, outcome: Outcome) -> None:
    assert not outcome.notes, describe(outcome)
    if case.expect == "error":
        assert outcome.train_error is not None, (
            f"expected a tool error, got a job:\n{describe(outcome)}"
        )
        assert outcome.train_error.startswith("Error executing tool train_model: ")
        assert_clear(outcome.train_error, case.error_words, "the tool error")
        assert outcome.jobs_after == outcome.jobs_before, "a rejected request still created a job"
        return
    if outcome.train_error is not None:
        assert case.expect == "either", f"unexpected tool error: {outcome.train_error}"
        assert_clear(outcome.train_error, case.error_words, "the tool error")
        return
    job = outcome.job
    assert job is not None
    assert job["status"] in ("succeeded", "failed"), f"job not finished:\n{describe(outcome)}"
    if job["status"] == "failed":
        assert case.expect == "either", f"job failed:\n{describe(outcome)}"
        assert_clear(job["error"] or "", case.error_words, "the job error", describe(outcome))
        return
    assert job["model_id"], describe(outcome)
    if job["task"] != "clustering":
        assert job["score"] is not None and math.isfinite(job["score"]), describe(outcome)
    assert_sane_predictions(outcome)


@pytest.mark.parametrize("name", [*BY_NAME, *EXTRA_PREDICTIONS])
def test_case(name: str, campaign: dict[str, Outcome]) -> None:
    case = BY_NAME.get(name) or Case(name, BY_NAME[EXTRA_PREDICTIONS[name]].build)
    check_outcome(case, campaign[name])


# -- case-specific expectations on top of the generic ones -----------------------------------


def result_of(outcome: Outcome) -> dict[str, Any]:
    assert outcome.job and outcome.job["status"] == "succeeded", describe(outcome)
    return outcome.job["result"] or {}


def dropped(outcome: Outcome) -> str:
    result = result_of(outcome)
    return repr(result.get("dropped_columns")) + repr(result.get("decisions"))


def test_leaky_column_is_dropped_and_reported(campaign: dict[str, Outcome]) -> None:
    outcome = campaign["leaky_column"]
    result = result_of(outcome)
    assert "outcome_copy" not in result["features"], result["features"]
    assert "outcome_copy" in dropped(outcome), result.get("dropped_columns")
    # An honest score: the copy of the target must not have been used.
    assert result["score"] < 0.9999, result["score"]


def test_useless_columns_are_dropped_and_reported(campaign: dict[str, Outcome]) -> None:
    outcome = campaign["missing_constant_and_id_columns"]
    result = result_of(outcome)
    assert "customer_id" not in result["features"], result["features"]
    assert "customer_id" in dropped(outcome), result.get("dropped_columns")
    for column in ("empty", "country"):
        assert column not in result["features"] or column in dropped(outcome), column


def test_classification_labels_round_trip(campaign: dict[str, Outcome]) -> None:
    expected = {
        "boolean_target": {"True", "False"},
        "numeric_coded_classes": {"0", "1", "2"},
        "unicode_target": {"très bien ✓", "pas du tout ☹"},
    }
    for name, labels in expected.items():
        outcome = campaign[name]
        frame = assert_sane_predictions(outcome)
        proba = {c.removeprefix("proba_") for c in frame.columns if c.startswith("proba_")}
        assert proba == labels, (name, proba)
    assert result_of(campaign["numeric_coded_classes"])["task"] == "multiclass"


def test_predictions_keep_input_order(campaign: dict[str, Outcome]) -> None:
    """A classifier this strong must agree with the obvious rows, row by row."""
    outcome = campaign["predict_reordered_extra_columns"]
    frame = assert_sane_predictions(outcome)
    truth = base_frame().head(30)["label"]
    assert (frame["prediction"].to_numpy() == truth.to_numpy()).mean() > 0.7


def test_thirty_classes_have_thirty_probabilities(campaign: dict[str, Outcome]) -> None:
    frame = assert_sane_predictions(campaign["thirty_classes"])
    assert len([c for c in frame.columns if c.startswith("proba_")]) == 30


def test_regression_predictions_are_finite(campaign: dict[str, Outcome]) -> None:
    frame = assert_sane_predictions(campaign["heavy_tailed_regression_rmse"])
    assert list(frame.columns) == ["prediction"]
    assert np.isfinite(frame["prediction"].astype(float)).all()


def test_requested_metric_is_used(campaign: dict[str, Outcome]) -> None:
    for name, metric in (
        ("metric_f1_linear_only", "f1"),
        ("metric_log_loss_groups", "log_loss"),
        ("metric_accuracy_exclude", "accuracy"),
        ("heavy_tailed_regression_rmse", "rmse"),
        ("metric_mae", "mae"),
    ):
        job = campaign[name].job
        assert job and job["status"] == "succeeded", describe(campaign[name])
        assert job["metric"] == metric, (name, job["metric"])


def test_models_allow_list_is_respected(campaign: dict[str, Outcome]) -> None:
    outcome = campaign["metric_f1_linear_only"]
    result = result_of(outcome)
    families = {row.get("family") for row in result.get("leaderboard") or []}
    assert families <= {"linear"}, families
    chosen = [d["decision"] for d in result["decisions"] if d["stage"] == "families"]
    assert chosen == ["linear"], result["decisions"]
    baselines = [line for line in outcome.log.splitlines() if "Baseline " in line]
    assert all("Baseline linear" in line for line in baselines), baselines


def test_excluded_and_group_columns_are_not_features(campaign: dict[str, Outcome]) -> None:
    assert "x2" not in result_of(campaign["metric_accuracy_exclude"])["features"]
    groups = result_of(campaign["metric_log_loss_groups"])
    assert "store" not in groups["features"], groups["features"]
    assert "group" in repr(groups.get("decisions")).lower(), groups.get("decisions")


def test_file_formats_keep_their_columns(campaign: dict[str, Outcome]) -> None:
    for name in ("semicolon_decimal_comma", "tsv", "parquet", "utf8_bom"):
        features = result_of(campaign[name])["features"]
        assert sorted(features) == ["colour", "x1", "x2"], (name, features)


def test_clustering_assigns_every_row(campaign: dict[str, Outcome]) -> None:
    frame = assert_sane_predictions(campaign["clustering"])
    assert frame["prediction"].nunique() == 3  # three well-separated blobs

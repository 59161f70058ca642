"""profile() on generated tables: column kinds, tasks, time axes, every warning, big-file streaming."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from profiling_files import bad_cases, task_tables, warnings_table

from mltrainer.state.errors import DatasetError
from mltrainer.tools.profiling import DatasetProfile, read_table
from mltrainer.tools.profiling import scan as scan_module
from mltrainer.tools.profiling.profile import profile


@pytest.fixture(scope="module")
def warned(tmp_path_factory: pytest.TempPathFactory) -> DatasetProfile:
    folder = tmp_path_factory.mktemp("warned")
    return profile(warnings_table(folder / "churn.csv"), "churned", plots_dir=folder / "plots")


def kinds(result: DatasetProfile) -> dict[str, str]:
    return {c.name: c.kind for c in result.columns}


def flagged(result: DatasetProfile, kind: str) -> set[str | None]:
    return {w.column for w in result.warnings if w.kind == kind}


def test_column_kinds(warned: DatasetProfile) -> None:
    assert kinds(warned) == {
        "customer_id": "identifier",
        "x": "numeric",
        "plan": "categorical",
        "email": "identifier",
        "zip_code": "categorical",
        "country": "constant",
        "fax": "boolean",
        "cancel_reason": "boolean",
        "churned_score": "numeric",
        "churned": "boolean",
    }


def test_column_statistics(warned: DatasetProfile) -> None:
    columns = {c.name: c for c in warned.columns}
    assert warned.n_rows == 1004 and warned.n_columns == 10 and not warned.sampled
    x = columns["x"]
    assert x.missing == 0 and x.stats is not None
    assert x.stats.min is not None and x.stats.max is not None
    assert x.stats.min < x.stats.median < x.stats.max  # type: ignore[operator]
    plan = columns["plan"]
    assert plan.cardinality == 3 and {v.value for v in plan.top_values} == {"basic", "pro", "team"}
    assert sum(v.ratio for v in plan.top_values) == pytest.approx(1.0, abs=1e-3)
    assert columns["fax"].missing_ratio > 0.85
    assert len(columns["email"].examples) == 3


def test_every_warning_the_planner_acts_on(warned: DatasetProfile) -> None:
    assert flagged(warned, "leakage") == {"cancel_reason", "churned_score"}
    assert flagged(warned, "identifier") == {"customer_id", "email"}
    assert flagged(warned, "constant") == {"country"}
    assert flagged(warned, "high_cardinality") == {"zip_code"}
    assert flagged(warned, "heavy_missing") == {"fax", "cancel_reason"}
    assert flagged(warned, "target_missing") == {"churned"}
    assert flagged(warned, "class_imbalance") == set()
    duplicates = [w for w in warned.warnings if w.kind == "duplicate_rows"]
    assert warned.duplicate_rows == 4 and "4 duplicated" in duplicates[0].message
    assert warned.columns_to_drop() == [
        "cancel_reason",
        "churned_score",
        "country",
        "customer_id",
        "email",
    ]
    severities = [w.severity for w in warned.warnings]
    assert severities == sorted(severities, key=["high", "medium", "low"].index)
    leak = next(w for w in warned.warnings if w.column == "churned_score")
    assert leak.severity == "high" and "derived from the target" in leak.message


def test_binary_target_analysis(warned: DatasetProfile) -> None:
    target = warned.target
    assert target is not None and target.task == "binary"
    assert target.n_classes == 2 and target.missing == 7
    assert {c.value for c in target.classes} == {"yes", "no"}
    assert 0 < (target.minority_ratio or 0) < 0.5


@pytest.mark.parametrize("sample_rows", [100_000, 600])
def test_a_table_read_whole_is_profiled_as_the_file_and_left_unchanged(
    tmp_path: Path, sample_rows: int
) -> None:
    """A training job profiles the frame its load stage read, not the file again: the same
    profile as the file's (a sample drawn the same way), and the frame the fit gets is
    untouched."""
    path = warnings_table(tmp_path / "churn.csv")
    read = read_table(path)
    before = read.copy(deep=True)
    from_file = profile(path, "churned", sample_rows=sample_rows)
    # The file cut to its header and ten rows: a profile that read it again would say so.
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:11]))
    from_read = profile(path, "churned", sample_rows=sample_rows, read=read)
    pd.testing.assert_frame_equal(read, before)
    assert from_read.n_rows == 1004 and from_read.sampled == (sample_rows < 1004)
    same = {"elapsed_s", "file_bytes"}  # the file's size is the cut file's
    assert from_read.model_dump(exclude=same) == from_file.model_dump(exclude=same)


def test_plots_are_png_files(warned: DatasetProfile) -> None:
    names = {p.name for p in warned.plots}
    assert names == {"target_distribution", "missingness", "correlations"}
    for plot in warned.plots:
        assert Path(plot.path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert 500 < plot.bytes < 200_000


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str, str]]:
    return task_tables(tmp_path_factory.mktemp("tasks"))


@pytest.mark.parametrize(
    "case",
    ["binary", "multiclass", "integer multiclass", "regression", "forecast", "text classification"],
)
def test_task_inference(tasks: dict[str, tuple[Path, str, str]], case: str) -> None:
    path, target, task = tasks[case]
    result = profile(path, target)
    assert result.target is not None
    assert result.target.task == task, result.target.reason
    assert not flagged(result, "leakage") - {"x"}


def test_regression_target_has_stats_and_no_classes(tasks) -> None:
    path, target, _ = tasks["regression"]
    result = profile(path, target)
    assert result.target is not None and result.target.stats is not None
    assert result.target.classes == [] and result.target.n_classes is None


def test_time_axis_frequency_and_gaps(tmp_path: Path) -> None:
    dates = pd.date_range("2022-01-01", periods=120, freq="D")
    kept = dates.delete([10, 11, 12, 50])  # a three-day and a one-day gap
    path = tmp_path / "daily.csv"
    pd.DataFrame({"day": kept.strftime("%Y-%m-%d"), "value": np.arange(len(kept))}).to_csv(
        path, index=False
    )
    axis = profile(path).time_axis
    assert axis is not None and axis.column == "day"
    assert axis.step == "1 days 00:00:00" and axis.regular
    assert axis.gaps == 4 and axis.largest_gap == "4 days 00:00:00"
    assert axis.start.startswith("2022-01-01") and axis.distinct == 116


def test_suggested_targets_without_a_target(tasks) -> None:
    path, _, _ = tasks["multiclass"]
    result = profile(path)
    assert result.target is None
    assert result.suggested_targets[0].column == "species"
    assert result.suggested_targets[0].task == "multiclass"


def test_class_imbalance(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "fraud.csv"
    pd.DataFrame(
        {"amount": rng.exponential(size=2000), "is_fraud": (rng.random(2000) < 0.02).astype(int)}
    ).to_csv(path, index=False)
    result = profile(path, "is_fraud")
    assert flagged(result, "class_imbalance") == {"is_fraud"}


def test_ragged_rows_are_a_warning_not_a_failure(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    rows = [f"{i},{i % 3}" for i in range(200)]
    rows[40] += ",extra"
    path.write_text("a,b\n" + "\n".join(rows) + "\n")
    result = profile(path)
    assert result.bad_rows == 1 and result.n_rows == 199
    warning = next(w for w in result.warnings if w.kind == "ragged_rows")
    assert "line 42 (3 fields)" in warning.message


def test_unknown_target_names_the_columns(tasks) -> None:
    path, _, _ = tasks["binary"]
    with pytest.raises(DatasetError, match=r"no column 'Label'\. Did you mean 'label'"):
        profile(path, "Label")


@pytest.mark.parametrize("case", ["empty", "binary", "header only", "mixed encodings", "missing"])
def test_profile_refuses_bad_files(tmp_path: Path, case: str) -> None:
    path, expected = bad_cases(tmp_path)[case]
    with pytest.raises(DatasetError, match=expected):
        profile(path)


def test_big_files_are_streamed_with_exact_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The streaming pass (normally above 64 MB) on a small file: exact counts, sampled stats."""
    rng = np.random.default_rng(2)
    rows = 60_000
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": np.where(rng.random(rows) < 0.3, np.nan, rng.normal(size=rows)),
            "c": rng.choice(["x", "y", None], size=rows),
            "y": rng.integers(0, 2, size=rows),
        }
    )
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    monkeypatch.setattr(scan_module, "FULL_READ_BYTES", 1 << 16)
    result = profile(path, "y", sample_rows=5_000)
    assert result.sampled and result.n_rows == rows
    assert 4_000 <= result.sample_rows <= 5_000
    columns = {c.name: c for c in result.columns}
    assert columns["b"].missing == int(frame["b"].isna().sum())
    assert columns["c"].missing == int(frame["c"].isna().sum())
    assert columns["a"].stats is not None
    assert abs(columns["a"].stats.mean or 0) < 0.1  # a uniform sample, not the head


def test_streamed_ranges_merge_types_and_locate_bad_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ranges parsed in parallel infer types apart; the merge and the bad-row lines stay right."""
    rows = [f"{i},{i % 10},{'yes' if i % 3 else 'no'}" for i in range(40_000)]
    rows[35_000] = "35000,ten,no"  # only the second half sees text in column b
    rows[20_000] += ",extra"
    path = tmp_path / "ranges.csv"
    path.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    monkeypatch.setattr(scan_module, "FULL_READ_BYTES", 1 << 12)
    monkeypatch.setattr(scan_module.os, "cpu_count", lambda: 3)
    result = profile(path, "label", sample_rows=40_000)
    assert result.n_rows == 39_999 and result.bad_rows == 1
    assert not result.sampled or result.sample_rows > 30_000
    ragged = next(w for w in result.warnings if w.kind == "ragged_rows")
    assert "line 20002 (4 fields)" in ragged.message
    columns = {c.name: c for c in result.columns}
    assert columns["b"].dtype in ("str", "string", "object")


def test_big_parquet_is_streamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {"v": np.where(rng.random(30_000) < 0.2, np.nan, rng.normal(size=30_000)), "k": "a"}
    )
    frame.loc[::2, "k"] = "b"
    path = tmp_path / "big.parquet"
    frame.to_parquet(path)
    monkeypatch.setattr(scan_module, "FULL_READ_BYTES", 1 << 10)
    result = profile(path, sample_rows=2_000)
    assert result.sampled and result.n_rows == 30_000 and result.format.kind == "parquet"
    assert {c.name: c.missing for c in result.columns}["v"] == int(frame["v"].isna().sum())


def test_a_file_whose_every_row_is_ragged_says_so(tmp_path: Path) -> None:
    path = tmp_path / "all_ragged.csv"
    path.write_text("a,b,c\n" + "1,2,3,4,5\n" * 50)
    with pytest.raises(DatasetError, match=r"50 row\(s\) have a wrong number of fields"):
        profile(path)


def test_small_dataset_warning(tmp_path: Path) -> None:
    path = tmp_path / "tiny.csv"
    pd.DataFrame({"x": range(40), "label": ["a", "b"] * 20}).to_csv(path, index=False)
    result = profile(path, "label")
    assert flagged(result, "small_dataset") == {None}


SECRET = "sk-" + "0123456789abcdefghij" * 4  # 83 characters: longer than any shown value


def test_shortened_values_are_masked_before_they_are_cut(tmp_path: Path) -> None:
    """Regression (#9, attack 5): a 59-character prefix of a longer secret was shown as an
    example value; the masker no longer recognised it once cut."""
    from mltrainer.state.masking import Masker

    rows = "\n".join(f"{i},{SECRET if i % 2 else 'plain'},{i % 3}" for i in range(30))
    path = tmp_path / "t.csv"
    path.write_text("id,token,y\n" + rows + "\n")
    masker = Masker({"KEY": SECRET})
    result = profile(path, "y", plots_dir=tmp_path / "plots", masker=masker)
    text = result.model_dump_json()
    assert SECRET[:20] not in text and "***KEY***" in text
    unmasked = profile(path, "y").model_dump_json()
    assert SECRET[:20] in unmasked and SECRET not in unmasked  # what used to leak


def test_bad_row_text_is_masked_before_it_is_cut() -> None:
    from types import SimpleNamespace

    from mltrainer.state.masking import Masker
    from mltrainer.tools.profiling.bad_rows import BadRows

    bad = BadRows(masker=Masker({"KEY": SECRET}))
    row = SimpleNamespace(expected_columns=2, actual_columns=3, number=None)
    bad.handler(SimpleNamespace(**vars(row), text="a," * 80 + SECRET))  # crosses the 200 cut
    bad.handler(SimpleNamespace(**vars(row), text="b," + SECRET))  # crosses the 60 cut
    shown = bad.describe() + " ".join(s.text for s in bad.samples)
    assert SECRET[:10] not in shown and "***KEY***" in shown


@pytest.mark.parametrize(
    "values",
    [
        pd.Series(np.random.default_rng(0).normal(size=999)),
        pd.Series(np.random.default_rng(1).integers(0, 100, 500)),
        pd.Series([True, False, True, True]),
        pd.Series(pd.array([3, 1, 4, 1, 5], dtype="Int64")),
        pd.Series([2.5]),
        pd.Series([1.0, np.inf]),
    ],
)
def test_numeric_stats_are_pandas_own(values: pd.Series) -> None:
    """Computed on the array (pandas' quantile costs milliseconds a call: seconds on a table of
    2,000 columns), with pandas' definitions: linear quantiles, sample deviation."""
    from mltrainer.tools.profiling.columns import _num, numeric_stats

    floats = values.astype(float)
    quartiles = floats.quantile([0.25, 0.5, 0.75]).tolist()
    expected = [floats.mean(), floats.std(), floats.min(), *quartiles, floats.max()]
    found = numeric_stats(values)
    assert [found.mean, found.std, found.min, found.p25, found.median, found.p75, found.max] == [
        _num(v) for v in expected
    ]
    assert numeric_stats(values.iloc[:0]).mean is None

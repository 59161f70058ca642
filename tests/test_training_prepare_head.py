"""The server's pre-job check reads the data without pandas (issue #17: the server's memory),
and says exactly what it said when it read the head with pandas."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from conftest import connect, error_text

from mltrainer.state.settings import Settings
from mltrainer.tools.profiling import read_table
from mltrainer.tools.profiling.peek import peek_table


def _parquet(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_parquet(path, index=False)
    return path


def test_checking_a_csv_request_imports_no_pandas(churn_csv: Path, home: Path) -> None:
    """The server stays free of numpy and pandas (~12 and ~80 MB for its lifetime) once built
    and after train_model's checks: the deep-layout sniff and prepare_train_request (the
    columns, the families, the metric), on a CSV."""
    script = textwrap.dedent(
        f"""
        import sys
        from mltrainer.server.app import create_server
        from mltrainer.state.secrets import SecretVault
        from mltrainer.state.settings import Settings
        from mltrainer.state.store import Store
        from mltrainer.tools.jobs.deep import deep_task
        from mltrainer.tools.training.prepare import prepare_train_request
        from mltrainer.tools.training.request import TrainRequest

        create_server()
        settings = Settings(home={str(home)!r})
        settings.ensure_dirs()
        vault = SecretVault.for_settings(settings)
        store = Store(settings.db_path, vault.masker())
        request = TrainRequest(
            dataset={str(churn_csv)!r}, target="label", metric="AUC", models=["xgb", "linear"]
        )
        assert deep_task(request, settings, store, vault) is None
        prepared = prepare_train_request(request, settings, store, vault)
        assert prepared.metric == "roc_auc", prepared
        print(sorted(m for m in ("numpy", "pandas", "pyarrow", "sklearn") if m in sys.modules))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=churn_csv.parent,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _tables(tmp_path: Path) -> dict[str, tuple[Path, dict, str]]:
    """Requests the check refuses, each as CSV and as Parquet: (file, arguments, message)."""
    rows = 30
    frames = {
        "empty target": pd.DataFrame({"x": range(rows), "label": [None] * rows}),
        "single value": pd.DataFrame({"x": range(rows), "label": ["yes"] * rows}),
        "too few labels": pd.DataFrame({"x": range(rows), "label": ["a", "b"] + [None] * 28}),
        "text target, r2": pd.DataFrame({"x": range(rows), "label": ["a", "b"] * 15}),
        "unknown target": pd.DataFrame({"x": range(rows), "label": ["a", "b"] * 15}),
    }
    arguments = {
        "empty target": ({"target": "label"}, "The target column 'label' is empty in the first"),
        "single value": ({"target": "label"}, "The target 'label' has a single value ('yes')"),
        "too few labels": ({"target": "label"}, "only 2 row(s) with a target value"),
        "text target, r2": ({"target": "label", "metric": "r2"}, "does not apply"),
        "unknown target": ({"target": "Label"}, "Column 'Label' (given as target) is not in"),
    }
    cases = {}
    for name, frame in frames.items():
        stem = name.replace(" ", "_").replace(",", "")
        csv = tmp_path / f"{stem}.csv"
        frame.to_csv(csv, index=False)
        parquet = _parquet(frame.astype({"label": "object"}), tmp_path / f"{stem}.parquet")
        args, message = arguments[name]
        cases[f"{name} (csv)"] = (csv, args, message)
        cases[f"{name} (parquet)"] = (parquet, args, message)
    return cases


@pytest.mark.anyio
async def test_pre_job_checks_say_the_same_on_csv_and_parquet(
    settings: Settings, tmp_path: Path
) -> None:
    async with connect("memory", settings) as client:
        for case, (path, args, message) in _tables(tmp_path).items():
            result = await client.call_tool(
                "train_model", {"dataset": str(path), **args, "wait_s": 0}
            )
            assert message in error_text(result), (case, error_text(result))


@pytest.mark.anyio
async def test_a_csv_head_the_reader_rejects_gives_the_readers_error(
    settings: Settings, tmp_path: Path
) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,label\n" + "1,2,x\n" * 20 + "1,2,3,4\n" + "1,2,y\n" * 20)
    header_only = tmp_path / "header_only.parquet"
    _parquet(pd.DataFrame({"a": pd.Series([], dtype=float), "label": []}), header_only)
    async with connect("memory", settings) as client:
        for path, message in ((ragged, "wrong number of fields"), (header_only, "no data rows")):
            result = await client.call_tool(
                "train_model", {"dataset": str(path), "target": "label", "wait_s": 0}
            )
            assert message in error_text(result), error_text(result)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("a,b,c,d,e\n1,1.5,yes,true,\n2,,no,false,\n3,2e3,yes,true,\n", "comma"),
        ("a;b;c\n1,5;x;1\n2,25;;0\n;3;1\n", "decimal comma"),
        ("a;b\n1.234,5;x\n2.000,25;y\n", "thousands"),
        ("a,b\nTrue,inf\n,-inf\nFalse,NaN\n", "bools with a gap, infinities"),
    ],
)
def test_peek_types_columns_as_the_reader_does(tmp_path: Path, text: str, name: str) -> None:
    path = tmp_path / "table.csv"
    path.write_text(text)
    frame = read_table(path)
    peek = peek_table(path, 200)
    assert peek.columns == [str(c) for c in frame.columns]
    assert peek.rows == len(frame)
    for column in frame.columns:
        assert peek.numeric[column] == pd.api.types.is_numeric_dtype(frame[column]), column
        missing = frame[column].isna().tolist()
        assert [v is None for v in peek.values[column]] == missing, column


@pytest.mark.parametrize(
    "index",
    [
        pd.Index([7, 8, 9], name="row_id"),  # stored as a column
        pd.Index([7, 8, 9]),  # as __index_level_0__
        pd.RangeIndex(3),  # pandas' default: stored as a description (a dict), not a column
    ],
)
def test_peek_of_a_parquet_file_leaves_out_a_stored_index(tmp_path: Path, index: pd.Index) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, None], "flag": [True, False, True]}, index=index)
    path = tmp_path / "indexed.parquet"
    frame.to_parquet(path)
    peek = peek_table(path, 2, columns=["x", "flag", "ghost"])
    assert peek.columns == ["x", "flag"] == [str(c) for c in read_table(path).columns]
    assert peek.rows == 2
    assert peek.values == {"x": [1.0, 2.0], "flag": [True, False]}
    assert peek.numeric == {"x": True, "flag": True}


@pytest.mark.parametrize(
    ("columns", "values", "expected"),
    [
        (["x", "species"], {"x": [1.0], "species": ["a"]}, False),
        (["picture", "kind"], {"picture": ["a.png", "b.JPG"], "kind": ["c", "d"]}, True),
        (["blob", "kind"], {"blob": [b"\x89PNG"], "kind": ["c"]}, True),
        (["Text", "Label"], {}, True),
        (["en", "de"], {}, True),
        (["messages"], {}, True),
    ],
)
def test_the_deep_sniff_loads_a_table_only_when_a_layout_could_fit(
    columns: list[str], values: dict, expected: bool
) -> None:
    from mltrainer.tools.deep.frames import may_have_layout

    assert may_have_layout(columns, values) is expected


def test_a_text_only_peek_of_parquet_reads_no_numeric_column(tmp_path: Path) -> None:
    """The deep sniff looks for image paths and bytes: numbers cannot be either."""
    frame = pd.DataFrame({"x": [1.5, 2.5], "path": ["a.png", "b.png"], "blob": [b"\x89", b"\x89"]})
    path = _parquet(frame, tmp_path / "mixed.parquet")
    peek = peek_table(path, 10, text_only=True)
    assert peek.columns == ["x", "path", "blob"]
    assert peek.values == {"path": ["a.png", "b.png"], "blob": [b"\x89", b"\x89"]}


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_the_deep_sniff_still_finds_images_in_an_unnamed_column(
    settings: Settings, tmp_path: Path, suffix: str
) -> None:
    """Image cells under a name no layout knows ('pixels') are found by their values."""
    from mltrainer.state.secrets import SecretVault
    from mltrainer.state.store import Store
    from mltrainer.tools.jobs.deep import deep_task
    from mltrainer.tools.training.request import TrainRequest

    settings.ensure_dirs()
    vault = SecretVault.for_settings(settings)
    store = Store(settings.db_path, vault.masker())
    cells = [{"bytes": b"\x89PNG", "path": None}] * 4 if suffix == ".parquet" else ["a.png"] * 4
    frame = pd.DataFrame({"pixels": cells, "kind": [0, 1, 0, 1]})
    path = tmp_path / f"images{suffix}"
    _parquet(frame, path) if suffix == ".parquet" else frame.to_csv(path, index=False)
    request = TrainRequest(dataset=str(path), target="kind")
    assert deep_task(request, settings, store, vault) == "image_classification"

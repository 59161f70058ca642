"""read_table and sniff on real awkward files: every sniffing case and every bad-input case."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest
from profiling_files import bad_cases, single_line, sniffing_cases

from mltrainer.state.errors import DatasetError
from mltrainer.tools.profiling import read_table, sniff
from mltrainer.tools.profiling.reader import read_frame


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    return sniffing_cases(tmp_path_factory.mktemp("sniff"))


@pytest.mark.parametrize(
    "case",
    [
        "utf-8 comma",
        "utf-8 bom",
        "utf-16 bom tab",
        "utf-16-le no bom",
        "cp1252 semicolon decimal comma",
        "pipe",
        "excel export: cp1252, semicolon, CRLF",
        "thousands dot",
        "no header",
        "quoted separators and newlines",
        "gzip",
        "one-table zip",
        "jsonl",
        "json array",
        "parquet",
    ],
)
def test_sniffing_finds_the_layout(cases: dict[str, tuple[Path, dict]], case: str) -> None:
    path, expected = cases[case]
    fmt = sniff(path)
    for field, value in expected.items():
        assert getattr(fmt, field) == value, (case, field, fmt)
    frame = read_table(path)
    assert len(frame) >= 2


def test_text_is_decoded_whatever_the_encoding(cases: dict[str, tuple[Path, dict]]) -> None:
    for case in ("utf-8 comma", "utf-8 bom", "utf-16 bom tab", "utf-16-le no bom", "gzip"):
        frame = read_table(cases[case][0])
        assert list(frame.columns) == ["name", "city", "amount"], case
        assert frame["name"].tolist() == ["André", "Björk", "Çelik"], case
        assert frame["city"].iloc[2] == "İzmir", case
        assert frame["amount"].tolist() == [1.5, 2.25, 3.0], case


def test_decimal_comma_and_thousands_become_numbers(cases: dict[str, tuple[Path, dict]]) -> None:
    for case in ("cp1252 semicolon decimal comma", "excel export: cp1252, semicolon, CRLF"):
        frame = read_table(cases[case][0])
        assert frame["amount"].tolist() == [1.5, 2.25, 3.0], case
        assert frame["name"].tolist() == ["André", "Björk", "Çelik"], case
    prices = read_table(cases["thousands dot"][0])["price"]
    assert prices.tolist() == [1234.5, 12000.0, 7.25]


def test_quoted_values_keep_separators_newlines_and_quotes(cases) -> None:
    frame = read_table(cases["quoted separators and newlines"][0])
    assert frame["a"].tolist() == ["hello, world", "two\nlines", 'say "hi"']
    assert frame["b"].tolist() == [1, 2, 3]


def test_headerless_file_gets_generated_names(cases) -> None:
    frame = read_table(cases["no header"][0])
    assert frame.shape == (4, 3)
    assert frame["column_1"].tolist() == [1, 4, 7, 10]


def test_nrows_and_columns(cases) -> None:
    for case in ("utf-8 comma", "parquet", "jsonl", "thousands dot"):
        path = cases[case][0]
        frame = read_table(path, nrows=1)
        assert len(frame) == 1, case
    frame = read_table(cases["utf-8 comma"][0], columns=["amount"])
    assert list(frame.columns) == ["amount"]
    with pytest.raises(DatasetError, match=r"no column.*'salary'.*Its columns are: name, city"):
        read_table(cases["utf-8 comma"][0], columns=["salary"])


def test_duplicate_and_empty_header_names_are_made_unique(tmp_path: Path) -> None:
    path = tmp_path / "dups.csv"
    path.write_text("a,a,,b\n1,2,3,4\n5,6,7,8\n")
    assert list(read_table(path).columns) == ["a", "a.1", "Unnamed: 2", "b"]


def test_a_column_changing_type_late_is_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    rows = "".join(f"{i},{i % 7}\n" for i in range(300_000))
    path.write_text("code,n\n" + rows + "A-17,3\n")
    frame = read_table(path)
    assert len(frame) == 300_001
    assert frame["code"].iloc[-1] == "A-17"
    assert frame["n"].dtype.kind == "i"
    head = read_table(path, nrows=10)
    assert len(head) == 10


def test_latin1_text_after_an_ascii_head_is_read_as_cp1252(tmp_path: Path) -> None:
    path = tmp_path / "late_latin.csv"
    body = "".join(f"{i},plain\n" for i in range(150_000)).encode()
    path.write_bytes(b"a,b\n" + body + "7,café\n".encode("cp1252"))
    frame = read_table(path)
    assert frame["b"].iloc[-1] == "café"


def test_excel_needs_its_reader(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
    assert sniff(path).kind == "excel"
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        with pytest.raises(DatasetError, match="openpyxl"):
            read_table(path)
    else:
        with pytest.raises(DatasetError):
            read_table(path)


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "directory",
        "empty",
        "whitespace",
        "binary",
        "nul bytes",
        "ragged",
        "header only",
        "mixed encodings",
        "mixed encodings past the head",
        "zip of several tables",
        "bad parquet",
        "bad json",
    ],
)
def test_bad_input_is_a_dataset_error_with_a_next_step(tmp_path: Path, case: str) -> None:
    path, expected = bad_cases(tmp_path)[case]
    with pytest.raises(DatasetError) as caught:
        read_table(path)
    message = str(caught.value)
    assert expected in message, message
    assert caught.value.next_step, message


def test_ragged_rows_name_their_lines_and_can_be_skipped(tmp_path: Path) -> None:
    path, _ = bad_cases(tmp_path)["ragged"]
    with pytest.raises(DatasetError, match=r"2 row\(s\).*line 3 \(3 fields\), line 5 \(1 fields\)"):
        read_table(path)
    frame = read_table(path, bad_rows="skip")
    assert frame.to_dict("list") == {"a": [1, 6], "b": [2, 7]}
    _, bad = read_frame(path, sniff(path))
    assert [s.line for s in bad.samples] == [3, 5]


def test_a_huge_single_line_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = single_line(tmp_path / "one_line.csv")
    with pytest.raises(DatasetError, match=r"first line .* longer than 32 MB"):
        read_table(path)


def test_the_reader_matches_pandas_on_a_plain_csv(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    expected = pd.DataFrame(
        {"i": range(50), "f": [i / 3 for i in range(50)], "s": [f"v{i % 5}" for i in range(50)]}
    )
    expected.loc[3, "f"] = None
    expected.to_csv(path, index=False)
    frame = read_table(path)
    pd.testing.assert_frame_equal(frame, pd.read_csv(path), check_dtype=False)


def test_iso_dates_are_read_as_datetimes(tmp_path: Path) -> None:
    path = tmp_path / "dates.csv"
    path.write_text(
        "day,at,n\n2024-01-31,2024-01-31 10:00:00,1\n2024-02-29,2024-02-29 11:30:00,2\n"
    )
    frame = read_table(path)
    assert frame["day"].dtype.kind == "M" and frame["at"].dtype.kind == "M"
    assert str(frame["day"].iloc[1].date()) == "2024-02-29"


def test_r_style_row_names_get_a_column(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text('"x","y"\n"1",0.5,"a"\n"2",1.5,"b"\n')
    frame = read_table(path)
    assert list(frame.columns) == ["Unnamed: 0", "x", "y"]
    assert frame["y"].tolist() == ["a", "b"]


def test_semicolon_file_with_decimal_commas_splits_on_semicolons(tmp_path: Path) -> None:
    from mltrainer.tools.profiling import read_table

    path = tmp_path / "eu.csv"
    path.write_text("x1;x2;colour\n" + "".join(f"{i},5;{i},25;red\n" for i in range(30)))
    frame = read_table(path)
    assert list(frame.columns) == ["x1", "x2", "colour"]
    assert frame["x1"].iloc[3] == 3.5


@pytest.mark.parametrize(
    "metadata",
    [
        b"{not json",  # not JSON
        b"[1, 2]",  # JSON, not the object pandas writes
        b'{"index_columns": [1, null, {"kind": "range"}], "columns": []}',  # entries of no kind
        b'{"index_columns": ["ghost"], "columns": [{"name": "ghost"}]}',  # a column not there
    ],
)
def test_a_parquet_file_whose_pandas_metadata_is_broken_is_read_as_arrow_typed_it(
    tmp_path: Path, metadata: bytes
) -> None:
    """The pandas metadata comes with the file (hostile or broken): where it does not apply, the
    columns are read without it, by the reader, the head's peek, the profile, the deep tasks'
    reader and the remote runs' dry-run sample."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mltrainer.tools.deep.frames import read_table as read_deep
    from mltrainer.tools.profiling.peek import peek_table
    from mltrainer.tools.profiling.profile import profile
    from mltrainer.tools.runtimes.sample import _cut_parquet

    table = pa.table({"x": [1.0, 2.0, 3.0] * 10, "y": [0, 1, 0] * 10})
    path = tmp_path / "broken.parquet"
    pq.write_table(table.replace_schema_metadata({b"pandas": metadata}), path)

    assert read_table(path)[["x", "y"]].equals(table.to_pandas())
    assert list(read_deep(path).columns) == ["x", "y"]
    assert peek_table(path, 5).columns == ["x", "y"]
    assert profile(path, "y").n_rows == 30
    _cut_parquet(path, tmp_path / "cut.parquet", 5, "y")
    assert pq.read_table(tmp_path / "cut.parquet").num_rows == 5

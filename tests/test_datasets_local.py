"""References, local paths under the roots, URL policy, and resolve_table."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.base import Response
from fakes.data import TEST_CSV, TRAIN_CSV, DataContext, FileServer, raw_zip

from mltrainer.state.errors import DatasetError, InvalidInput, NotFound, PermissionDenied
from mltrainer.tools.datasets.fetch import fetch
from mltrainer.tools.datasets.refs import parse_ref
from mltrainer.tools.datasets.table import resolve_table

pytest_plugins = ["datasets_fixtures"]


def get(ds: DataContext, ref: str, **kwargs: object):  # type: ignore[no-untyped-def]
    return fetch(ref, settings=ds.settings, store=ds.store, vault=ds.vault, **kwargs)  # type: ignore[arg-type]


# -- references -----------------------------------------------------------------------------
def test_ref_grammar() -> None:
    kaggle = parse_ref("kaggle:uciml/iris@3/Iris.csv")
    assert (kaggle.source, kaggle.text, kaggle.version, kaggle.file) == (
        "kaggle", "kaggle:uciml/iris@3", 3, "Iris.csv",
    )  # fmt: skip
    hf = parse_ref("hf:stanfordnlp/imdb:plain_text/train")
    assert (hf.config, hf.split, hf.revision) == ("plain_text", "train", None)
    assert parse_ref("hf:o/n@refs/convert/parquet").revision == "refs/convert/parquet"
    assert parse_ref("kaggle-competition:titanic/train.csv").file == "train.csv"
    assert parse_ref("ds_0123456789ab/train.csv").dataset_id == "ds_0123456789ab"
    assert parse_ref("https://example.com/a.csv#a.csv").file == "a.csv"
    for bad in ["kaggle:justone", "hf:no-owner", "hf:o/n@x..y", "", "kaggle:o/d/../x"]:
        with pytest.raises((InvalidInput, PermissionDenied)):
            parse_ref(bad)


@pytest.mark.parametrize("url", ["ftp://example.com/a", "file:///etc/passwd", "https://"])
def test_url_schemes_other_than_https_are_refused_when_parsed(url: str) -> None:
    with pytest.raises(PermissionDenied, match="only https"):
        parse_ref(url)


def test_plain_http_is_refused_unless_to_loopback_and_allowed(ds: DataContext) -> None:
    with pytest.raises(PermissionDenied, match="allowed to loopback only"):
        get(ds, "http://93.184.216.34/a.csv")  # a public address
    ds.settings.allow_loopback_http = False
    with pytest.raises(PermissionDenied, match="MLTRAINER_ALLOW_LOOPBACK_HTTP"):
        get(ds, "http://127.0.0.1:9/a.csv")


@pytest.mark.parametrize("ref", ["../../etc/passwd", "data/../../../etc/passwd", "..\\..\\x"])
def test_traversal_refused_before_any_filesystem_call(
    ds: DataContext, ref: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    touched: list[str] = []

    def spy(name: str):  # type: ignore[no-untyped-def]
        real = getattr(os, name)

        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            touched.append(f"{name}{args[:1]}")
            return real(*args, **kwargs)

        return wrapper

    with monkeypatch.context() as patch:
        for name in ("stat", "lstat", "open", "listdir", "scandir"):
            patch.setattr(os, name, spy(name))
        with pytest.raises(PermissionDenied, match=r"'\.\.' components are not allowed"):
            get(ds, ref)
    assert touched == []


# -- local paths ----------------------------------------------------------------------------
def test_local_file_under_cwd(ds: DataContext, tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_bytes(TRAIN_CSV)
    result = get(ds, "train.csv")
    assert result.source == "local" and [f.path for f in result.files] == ["train.csv"]
    assert Path(result.local_dir) == tmp_path.resolve()
    assert get(ds, "train.csv").cached
    (tmp_path / "train.csv").write_bytes(TRAIN_CSV + b"4,0.2,no\n")
    changed = get(ds, "train.csv")
    assert not changed.cached and changed.checksum != result.checksum


def test_local_outside_roots_and_symlink_escape(ds: DataContext, tmp_path: Path) -> None:
    with pytest.raises(PermissionDenied, match="is outside the folders tools may read"):
        get(ds, "/etc/passwd")
    (tmp_path / "escape.csv").symlink_to("/etc/passwd")
    with pytest.raises(PermissionDenied, match="links to a place outside"):
        get(ds, "escape.csv")
    with pytest.raises(NotFound):
        get(ds, "missing.csv")


def test_data_roots_allow_other_directories(
    ds: DataContext, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "d.csv").write_bytes(TRAIN_CSV)
    with pytest.raises(PermissionDenied):
        get(ds, str(elsewhere / "d.csv"))
    ds.settings.data_roots = [elsewhere]
    assert get(ds, str(elsewhere / "d.csv")).files[0].bytes == len(TRAIN_CSV)


# -- URLs -----------------------------------------------------------------------------------
@pytest.fixture
def files() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server


def test_url_download_with_content_disposition(ds: DataContext, files: FileServer) -> None:
    files.files["/get"] = Response(
        200, TRAIN_CSV, {"Content-Disposition": 'attachment; filename="../../My Data.csv"'}
    )
    result = get(ds, f"{files.url}/get?id=1")
    assert [f.path for f in result.files] == ["My_Data.csv"]
    assert get(ds, f"{files.url}/get?id=1").cached


def test_url_archive_is_extracted_and_redirects_obey_the_policy(
    ds: DataContext, files: FileServer
) -> None:
    files.files["/d.zip"] = Response(
        200, raw_zip([("train.csv", TRAIN_CSV), ("test.csv", TEST_CSV)])
    )
    files.files["/moved"] = Response(302, headers={"Location": "/d.zip"})
    files.files["/away"] = Response(302, headers={"Location": "http://93.184.216.34/x.csv"})
    result = get(ds, f"{files.url}/moved")
    assert sorted(f.path for f in result.files) == ["test.csv", "train.csv"]
    with pytest.raises(PermissionDenied, match="allowed to loopback only"):
        get(ds, f"{files.url}/away")
    picked = resolve_table(f"{files.url}/d.zip#test.csv", ds.store, ds.settings, ds.vault)
    assert picked.read_bytes() == TEST_CSV


def test_url_errors_and_cap(ds: DataContext, files: FileServer) -> None:
    with pytest.raises(NotFound, match="HTTP 404"):
        get(ds, f"{files.url}/missing.csv")
    files.files["/big.csv"] = Response(200, b"x" * 5000)
    ds.settings.max_download_bytes = 1000
    with pytest.raises(DatasetError, match="larger than the limit of 1,000 bytes"):
        get(ds, f"{files.url}/big.csv")
    assert [p.name for p in ds.settings.datasets_dir.iterdir()] == []


# -- resolve_table --------------------------------------------------------------------------
def test_resolve_table_local_and_ambiguous(ds: DataContext, tmp_path: Path) -> None:
    table = lambda ref: resolve_table(ref, ds.store, ds.settings, ds.vault)  # noqa: E731
    data = tmp_path / "data"
    data.mkdir()
    (data / "only.csv").write_bytes(TRAIN_CSV)
    assert table("data/only.csv") == (data / "only.csv").resolve()
    assert table("data") == (data / "only.csv").resolve()
    (data / "other.parquet").write_bytes(b"PAR1")
    with pytest.raises(InvalidInput, match=r"several tables.*data#only\.csv"):
        table("data")
    assert table("data#other.parquet") == (data / "other.parquet").resolve()


def test_resolve_table_remote_refs(ds: DataContext, kaggle_creds: None) -> None:
    table = lambda ref: resolve_table(ref, ds.store, ds.settings, ds.vault)  # noqa: E731
    path = table("kaggle:acme/churn")  # train.csv is preferred over test.csv
    assert path.name == "train.csv" and path.read_bytes() == TRAIN_CSV
    dataset_id = path.parent.name
    assert table(f"{dataset_id}/test.csv").read_bytes() == TEST_CSV
    assert table("kaggle:acme/churn/test.csv").read_bytes() == TEST_CSV
    with pytest.raises(NotFound, match=r"no file 'nope\.csv'"):
        table(f"{dataset_id}/nope.csv")

"""Kaggle through the real kaggle/kagglesdk client against a local fake Kaggle API."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from fakes.data import IRIS_CSV, TRAIN_CSV, DataContext, raw_zip
from fakes.kaggle import FakeDataset, FakeKaggle

from mltrainer.state.errors import DatasetError, NotFound, RemoteServiceError, SecretError
from mltrainer.tools.datasets.fetch import fetch
from mltrainer.tools.datasets.search import search

pytest_plugins = ["datasets_fixtures"]


def get(ds: DataContext, ref: str, **kwargs: object):
    return fetch(ref, settings=ds.settings, store=ds.store, vault=ds.vault, **kwargs)  # type: ignore[arg-type]


def test_download_dataset_extracts_zip_and_records_it(ds: DataContext, kaggle_creds: None) -> None:
    seen: list[tuple[float, float | None, str]] = []
    result = get(ds, "kaggle:uciml/iris", progress=lambda d, t, m: seen.append((d, t, m)))
    assert (
        result.source == "kaggle" and result.title == "Iris Species" and result.licence == "CC0-1.0"
    )
    assert [f.path for f in result.files] == ["Iris.csv"]
    assert (Path(result.local_dir) / "Iris.csv").read_bytes() == IRIS_CSV
    assert Path(result.local_dir).parent == ds.settings.datasets_dir
    assert not result.cached and seen and seen[-1][2] == "done"
    assert ds.store.get_dataset(result.dataset_id).checksum == result.checksum


def test_second_download_is_served_from_cache(
    ds: DataContext, kaggle_creds: None, fake_kaggle: FakeKaggle
) -> None:
    first = get(ds, "kaggle:uciml/iris")
    calls = len(fake_kaggle.requests)
    second = get(ds, "kaggle:uciml/iris")
    assert second.cached and second.dataset_id == first.dataset_id
    assert second.checksum == first.checksum
    assert len(fake_kaggle.requests) == calls  # no network at all
    again = get(ds, first.dataset_id)
    assert again.cached and again.local_dir == first.local_dir


def test_deleted_cache_files_trigger_a_new_download(ds: DataContext, kaggle_creds: None) -> None:
    first = get(ds, "kaggle:uciml/iris")
    (Path(first.local_dir) / "Iris.csv").unlink()
    second = get(ds, "kaggle:uciml/iris")
    assert not second.cached and (Path(second.local_dir) / "Iris.csv").exists()


def test_single_file_selection(
    ds: DataContext, kaggle_creds: None, fake_kaggle: FakeKaggle
) -> None:
    result = get(ds, "kaggle:acme/churn", files=["train.csv"])
    assert [f.path for f in result.files] == ["train.csv"]
    assert (Path(result.local_dir) / "train.csv").read_bytes() == TRAIN_CSV
    bodies = [r.json() for r in fake_kaggle.requests if r.path.endswith("DownloadDataset")]
    assert bodies[-1]["fileName"] == "train.csv"


def test_search_is_compact_and_ranked(ds: DataContext, kaggle_creds: None) -> None:
    found = search("churn", settings=ds.settings, vault=ds.vault, source="kaggle", limit=5)
    assert [hit.ref for hit in found.results] == ["kaggle:acme/churn"]
    hit = found.results[0]
    assert hit.title == "Customer Churn" and hit.votes == 10 and hit.updated == "2025-03-04"
    assert hit.description is None and hit.tags is None  # only with detail=True
    detailed = search("churn", settings=ds.settings, vault=ds.vault, source="kaggle", detail=True)
    assert detailed.results[0].description == "About Customer Churn"
    assert len(found.model_dump_json()) < 600


def test_unset_credentials_are_a_clear_error(ds: DataContext) -> None:
    with pytest.raises(SecretError, match="secret://KAGGLE is not set"):
        get(ds, "kaggle:uciml/iris")


def test_wrong_credentials_401(ds: DataContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "wrong")
    with pytest.raises(SecretError, match=r"rejected the credentials.*HTTP 401"):
        get(ds, "kaggle:uciml/iris")


def test_unknown_dataset_404(ds: DataContext, kaggle_creds: None) -> None:
    with pytest.raises(NotFound, match="no dataset or file matching kaggle:nobody/nothing"):
        get(ds, "kaggle:nobody/nothing")


def test_competition_rules_403_then_accepted(
    ds: DataContext, kaggle_creds: None, fake_kaggle: FakeKaggle
) -> None:
    with pytest.raises(RemoteServiceError) as info:
        get(ds, "kaggle-competition:titanic")
    assert info.value.status == 403
    assert "https://www.kaggle.com/competitions/titanic/rules" in str(info.value)
    fake_kaggle.rules_accepted.add("titanic")
    result = get(ds, "kaggle-competition:titanic")
    assert sorted(f.path for f in result.files) == ["test.csv", "train.csv"]


def test_rate_limit_429_is_retried(
    ds: DataContext, kaggle_creds: None, fake_kaggle: FakeKaggle, no_retry_wait: None
) -> None:
    fake_kaggle.fail_next = [429, 429]
    result = get(ds, "kaggle:uciml/iris")
    assert [f.path for f in result.files] == ["Iris.csv"]
    assert fake_kaggle.fail_next == []


def test_rate_limit_429_that_persists_says_so(
    ds: DataContext, kaggle_creds: None, fake_kaggle: FakeKaggle, no_retry_wait: None
) -> None:
    fake_kaggle.fail_next = [429] * 10
    with pytest.raises(RemoteServiceError, match=r"rate-limiting.*after 4 attempts.*HTTP 429"):
        get(ds, "kaggle:uciml/iris")
    assert len(fake_kaggle.fail_next) == 6


def test_zip_slip_member_is_refused_and_nothing_is_kept(
    ds: DataContext, kaggle_creds: None, fake_kaggle: FakeKaggle
) -> None:
    evil = raw_zip([("ok.csv", b"a\n1\n"), ("../../evil.txt", b"pwned")])
    fake_kaggle.add(FakeDataset("bad", "slip", "Slip", {"ok.csv": b""}, raw_zip=evil))
    with pytest.raises(DatasetError, match=r"member '\.\./\.\./evil\.txt' points outside"):
        get(ds, "kaggle:bad/slip")
    assert list(ds.settings.datasets_dir.iterdir()) == []
    assert not (ds.settings.home.parent / "evil.txt").exists()
    assert ds.store.find_dataset("kaggle:bad/slip") is None


def test_zip_bomb_is_refused(ds: DataContext, kaggle_creds: None, fake_kaggle: FakeKaggle) -> None:
    bomb = raw_zip([("zeros.csv", b"0" * 5_000_000)])
    assert len(bomb) < 50_000
    fake_kaggle.add(FakeDataset("bad", "bomb", "Bomb", {"zeros.csv": b""}, raw_zip=bomb))
    ds.settings.max_extract_bytes = 1_000_000
    with pytest.raises(DatasetError, match="expands to more than 1,000,000 bytes"):
        get(ds, "kaggle:bad/bomb")
    assert list(ds.settings.datasets_dir.iterdir()) == []


def test_download_size_cap(ds: DataContext, kaggle_creds: None) -> None:
    ds.settings.max_download_bytes = 10
    with pytest.raises(DatasetError, match="larger than the limit of 10 bytes"):
        get(ds, "kaggle:uciml/iris")
    assert list(ds.settings.datasets_dir.iterdir()) == []


def test_kaggle_import_prints_nothing_to_stdout(
    capfd: pytest.CaptureFixture[str], ds, kaggle_creds
) -> None:
    get(ds, "kaggle:uciml/iris")
    assert capfd.readouterr().out == ""


def test_fake_zip_helper_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(raw_zip([("a.csv", b"1")]))
    assert zipfile.ZipFile(path).namelist() == ["a.csv"]


def test_a_stalled_kaggle_times_out_with_a_clear_error(
    ds: DataContext, kaggle_creds: None, fake_kaggle: FakeKaggle, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mltrainer.tools.datasets import kaggle_source

    monkeypatch.setattr(kaggle_source, "REQUEST_TIMEOUT", (1.0, 0.3))
    fake_kaggle.stall_s = 1.0
    with pytest.raises(RemoteServiceError, match=r"Could not reach Kaggle.*Timeout"):
        get(ds, "kaggle:uciml/iris")

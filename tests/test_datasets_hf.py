"""Hugging Face datasets through the real huggingface_hub client against a local fake Hub."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.data import IRIS_CSV, TRAIN_CSV, DataContext
from fakes.hf import TOKEN, FakeHub, FakeRepo

from mltrainer.state.errors import (
    DatasetError,
    InvalidInput,
    NotFound,
    RemoteServiceError,
    SecretError,
)
from mltrainer.tools.datasets.fetch import fetch
from mltrainer.tools.datasets.search import search

pytest_plugins = ["datasets_fixtures"]


def get(ds: DataContext, ref: str, **kwargs: object):  # type: ignore[no-untyped-def]
    return fetch(ref, settings=ds.settings, store=ds.store, vault=ds.vault, **kwargs)  # type: ignore[arg-type]


def test_public_dataset_anonymously(ds: DataContext, fake_hub: FakeHub) -> None:
    result = get(ds, "hf:scikit-learn/iris")
    assert sorted(f.path for f in result.files) == ["Iris.csv", "README.md"]
    assert (Path(result.local_dir) / "Iris.csv").read_bytes() == IRIS_CSV
    assert result.licence == "mit" and result.source == "hf"
    assert all("authorization" not in r.headers for r in fake_hub.requests)
    again = get(ds, "hf:scikit-learn/iris")
    assert again.cached and again.checksum == result.checksum


def test_file_selection_and_fragment(ds: DataContext, fake_hub: FakeHub) -> None:
    result = get(ds, "hf:scikit-learn/iris", files=["Iris.csv"])
    assert [f.path for f in result.files] == ["Iris.csv"]
    picked = get(ds, "hf:scikit-learn/iris#Iris.csv")
    assert picked.dataset_id == result.dataset_id and picked.cached


def test_revision(ds: DataContext, fake_hub: FakeHub) -> None:
    result = get(ds, "hf:stanfordnlp/imdb@v1.0")
    assert [f.path for f in result.files] == ["old.csv"]


def test_config_and_split_use_the_parquet_conversion(ds: DataContext, fake_hub: FakeHub) -> None:
    split = get(ds, "hf:stanfordnlp/imdb:plain_text/train")
    assert [f.path for f in split.files] == ["plain_text/train/0000.parquet"]
    config = get(ds, "hf:stanfordnlp/imdb:plain_text")
    assert len(config.files) == 2
    with pytest.raises(NotFound, match="Known configs: plain_text"):
        get(ds, "hf:stanfordnlp/imdb:nope")
    with pytest.raises(InvalidInput, match="either @REVISION or :CONFIG"):
        get(ds, "hf:stanfordnlp/imdb@main:plain_text")


def test_gated_dataset_needs_a_token(
    ds: DataContext, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(RemoteServiceError, match=r"gated.*secret://HF_TOKEN"):
        get(ds, "hf:acme/gated-data")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    result = get(ds, "hf:acme/gated-data")
    assert (Path(result.local_dir) / "data.csv").read_bytes() == TRAIN_CSV


def test_unknown_repo_and_missing_file(ds: DataContext, fake_hub: FakeHub) -> None:
    with pytest.raises(NotFound, match="no dataset hf:nobody/nothing"):
        get(ds, "hf:nobody/nothing")
    with pytest.raises(NotFound, match="has no file"):
        get(ds, "hf:scikit-learn/iris", files=["missing.csv"])
    with pytest.raises(NotFound, match="revision does not exist"):
        get(ds, "hf:scikit-learn/iris@nope")


def test_malformed_credentials_reference(ds: DataContext, fake_hub: FakeHub) -> None:
    with pytest.raises(SecretError, match="Malformed secret reference"):
        get(ds, "hf:scikit-learn/iris", credentials="secret://../x")


def test_size_cap_checked_before_download(ds: DataContext, fake_hub: FakeHub) -> None:
    ds.settings.max_download_bytes = 10
    with pytest.raises(DatasetError, match="larger than the limit"):
        get(ds, "hf:scikit-learn/iris")
    assert not any("/resolve/" in r.path for r in fake_hub.requests)


def test_search_hf_and_all(ds: DataContext, fake_hub: FakeHub) -> None:
    found = search("iris", settings=ds.settings, vault=ds.vault, source="hf")
    assert [h.ref for h in found.results] == ["hf:scikit-learn/iris"]
    assert found.results[0].licence == "mit" and found.results[0].downloads == 1234
    both = search("a", settings=ds.settings, vault=ds.vault, source="all", limit=2)
    assert len(both.results) == 2
    assert any("kaggle" in note and "secret://KAGGLE" in note for note in both.notes)


def test_search_all_notes_each_failing_source_instead_of_raising_only_the_first(
    ds: DataContext, fake_hub: FakeHub
) -> None:
    """Regression (#10): with both sources failing, only Kaggle's error was shown."""
    fake_hub.fail_next = [403]
    both = search("iris", settings=ds.settings, vault=ds.vault, source="all")
    assert both.results == []
    assert [note.split(":")[0] for note in both.notes] == ["kaggle", "hf"]
    assert "secret://KAGGLE" in both.notes[0] and "HTTP 403" in both.notes[1]
    with pytest.raises(RemoteServiceError, match="HTTP 403"):
        fake_hub.fail_next = [403]
        search("iris", settings=ds.settings, vault=ds.vault, source="hf")


def test_search_all_interleaves_sources(
    ds: DataContext, fake_hub: FakeHub, kaggle_creds: None
) -> None:
    both = search("iris", settings=ds.settings, vault=ds.vault)
    assert [h.ref for h in both.results] == ["kaggle:uciml/iris", "hf:scikit-learn/iris"]
    assert both.notes == []


def test_byte_progress_and_cap_on_bytes_that_arrive(ds: DataContext, fake_hub: FakeHub) -> None:
    seen: list[tuple[float, float | None, str]] = []
    get(ds, "hf:scikit-learn/iris", files=["Iris.csv"], progress=lambda *a: seen.append(a))
    assert any("downloading Iris.csv" in message for _, _, message in seen)
    assert seen[-1] == (len(IRIS_CSV), len(IRIS_CSV), "done")
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)  # MCP progress only increases
    fake_hub.add(FakeRepo("acme/liar", {"big.csv": b"x" * 5000}, lie_about_sizes=True))
    ds.settings.max_download_bytes = 1000
    with pytest.raises(DatasetError, match="larger than the limit of 1,000 bytes"):
        get(ds, "hf:acme/liar")
    assert [p.name for p in ds.settings.datasets_dir.iterdir() if p.name.startswith(".")] == []

"""Fixtures for the dataset tests: isolated environment, fake Kaggle and Hub servers, an
AppContext on a fresh state directory. Import the fixtures you use into the test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.data import IRIS_CSV, TEST_CSV, TRAIN_CSV, DataContext
from fakes.hf import FakeHub, FakeRepo
from fakes.kaggle import KEY, USERNAME, FakeDataset, FakeKaggle

from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store


@pytest.fixture
def dataset_env(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No real credentials, no real ~/.kaggle or ~/.cache/huggingface: a fake HOME."""
    fake_home = tmp_path / "user"
    fake_home.mkdir()
    monkeypatch.setenv("HOME", str(fake_home))
    monkeypatch.setenv("HF_HOME", str(fake_home / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    for name in (
        "KAGGLE_USERNAME",
        "KAGGLE_KEY",
        "KAGGLE_API_TOKEN",
        "KAGGLE_CONFIG_DIR",
        "HF_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    return fake_home


@pytest.fixture
def kaggle_creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGGLE_USERNAME", USERNAME)
    monkeypatch.setenv("KAGGLE_KEY", KEY)


@pytest.fixture
def fake_kaggle() -> Iterator[FakeKaggle]:
    with FakeKaggle() as server:
        server.add(FakeDataset("uciml", "iris", "Iris Species", {"Iris.csv": IRIS_CSV}))
        server.add(
            FakeDataset(
                "acme", "churn", "Customer Churn", {"train.csv": TRAIN_CSV, "test.csv": TEST_CSV}
            )
        )
        server.competitions["titanic"] = {"train.csv": TRAIN_CSV, "test.csv": TEST_CSV}
        yield server


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with FakeHub() as server:
        server.add(FakeRepo("scikit-learn/iris", {"Iris.csv": IRIS_CSV, "README.md": b"# Iris\n"}))
        server.add(
            FakeRepo(
                "stanfordnlp/imdb",
                {"README.md": b"# IMDB\n", "plain_text/train.parquet": b"PAR1-main"},
                revisions={
                    "refs/convert/parquet": {
                        "plain_text/train/0000.parquet": b"PAR1-train",
                        "plain_text/test/0000.parquet": b"PAR1-test",
                    },
                    "v1.0": {"old.csv": b"a,b\n1,2\n"},
                },
            )
        )
        server.add(FakeRepo("acme/gated-data", {"data.csv": TRAIN_CSV}, gated=True))
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


@pytest.fixture
def ds_settings(dataset_env: Path, home: Path, fake_kaggle: FakeKaggle) -> Settings:
    return Settings(home=home, kaggle_api_endpoint=fake_kaggle.url, allow_loopback_http=True)


@pytest.fixture
def ds(ds_settings: Settings) -> Iterator[DataContext]:
    ds_settings.ensure_dirs()
    store = Store(ds_settings.db_path)
    yield DataContext(ds_settings, store, SecretVault.for_settings(ds_settings))
    store.close()


@pytest.fixture
def no_retry_wait() -> Iterator[None]:
    import stamina

    from mltrainer.tools.datasets.kaggle_source import RETRY_ATTEMPTS

    with stamina.set_testing(True, attempts=RETRY_ATTEMPTS):
        yield

"""Fixtures of the deployment tests: models trained once through the real server, a fake Hub
that the real huggingface_hub client writes to, and helpers to read back what it holds."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import connect, payload, train_until_done, write_classification_csv
from fakes.hf import FakeHub
from fakes.hub_write import TOKEN

from mltrainer.state.masking import Masker
from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.training.model import LoadedModel, load_record

# A token only these tests know: it must reach the Hub in Authorization headers and nowhere else.
CANARY = "hf_CanaryToken0123456789abcdefXYZ"


@dataclass
class Trained:
    home: Path
    classifier: str  # model_id of a binary classifier (x1, x2, colour -> label)
    classifier_job: str
    regressor: str  # model_id of a regression model (a, b -> y)
    data: Path  # the classifier's training data

    def folder(self, model_id: str) -> Path:
        return self.home / "models" / model_id

    def loaded(self, model_id: str) -> LoadedModel:
        """The model as the server loads it: its file checked against the recorded hash."""
        store = Store(Settings(home=self.home).db_path)
        try:
            return load_record(store.get_model(model_id), store)
        finally:
            store.close()


def _write_regression_csv(path: Path) -> Path:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame["y"] = 3 * frame["a"] - frame["b"] + rng.normal(scale=0.1, size=200)
    frame.to_csv(path, index=False)
    return path


async def _train(settings: Settings, data: Path, target: str) -> dict[str, Any]:
    async with connect("memory", settings) as client:
        arguments = {"dataset": str(data), "target": target, "time_budget_s": 8}
        job = payload(await train_until_done(client, arguments))
    assert job["status"] == "succeeded", job
    return job


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Two models trained through the real server (once for all deployment tests)."""
    home = tmp_path_factory.mktemp("deploy") / "home"
    settings = Settings(home=home)
    settings.ensure_dirs()
    folder = settings.datasets_dir / "local"  # the one part of the state directory tools read
    folder.mkdir(parents=True)
    data = write_classification_csv(folder / "churn.csv")
    regression = _write_regression_csv(folder / "reg.csv")
    classifier = anyio.run(_train, settings, data, "label")
    regressor = anyio.run(_train, settings, regression, "y")
    return Trained(home, classifier["model_id"], classifier["job_id"], regressor["model_id"], data)


@pytest.fixture
def model_copy(trained: Trained, tmp_path: Path) -> Path:
    """A copy of the classifier's folder that a test may change."""
    return Path(shutil.copytree(trained.folder(trained.classifier), tmp_path / "model"))


@pytest.fixture
def no_xet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uploads over the Hub's HTTP LFS protocol, which the fake speaks; huggingface_hub uses
    its Xet protocol (a separate storage service) whenever hf_xet is installed."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)


@pytest.fixture
def hub(no_xet: None) -> Iterator[FakeHub]:
    with FakeHub() as server:
        server.writer.tokens[CANARY] = server.writer.tokens[TOKEN]
        yield server


def hub_settings(trained: Trained, hub: FakeHub) -> Settings:
    return Settings(home=trained.home, hf_endpoint=hub.url)


def vault_with(token: str | None, settings: Settings) -> SecretVault:
    """A vault whose HF_TOKEN is bound to the settings' (fake) Hub."""
    return SecretVault(
        Path("/nonexistent/secrets.json"),
        environ={"HF_TOKEN": token} if token else {},
        settings=settings,
    )


def masker_for(vault: SecretVault) -> Masker:
    return vault.masker()


def token_only_in_authorization(hub: FakeHub, token: str) -> int:
    """Assert ``token`` is in no recorded request's path, query, other headers or body, and in
    no file any commit holds; return how many requests carried it as their bearer token."""
    import json

    carried = 0
    for request in hub.requests:
        headers = {k: v for k, v in request.headers.items() if k != "authorization"}
        assert token not in json.dumps([request.path, request.query, headers])
        assert token.encode() not in request.body
        carried += request.headers.get("authorization") == f"Bearer {token}"
    for repo in hub.writer.repos.values():
        for commit in repo.commits:
            assert all(token.encode() not in f.data for f in commit.files.values())
    return carried

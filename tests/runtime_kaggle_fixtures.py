"""Fixtures for the Kaggle kernels runtime tests: a fake Kaggle API the real client talks to,
credentials for it, a runtime, and a run folder with data that make a RemoteSpec."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fakes.data import TEST_CSV, TRAIN_CSV
from fakes.kaggle import API_TOKEN, KEY, USERNAME, FakeDataset, FakeKaggle

from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.tools.runtimes.base import RemoteSpec, Resources
from mltrainer.tools.runtimes.kaggle import KaggleRuntime

JOB = "job_0123456789ab"
KERNEL_REF = f"{USERNAME}/mltrainer-job-0123456789ab"
DATASET_REF = f"{USERNAME}/mltrainer-data-job-0123456789ab"

# The entry script of the run folder: reads the contract's folders, uses a helper and the
# config shipped with it, and writes a small model folder (binary and text files).
TRAIN_PY = """\
import json, os, sys
from helpers import load_rows

data, output = os.environ["MLTRAINER_INPUT_DIR"], os.environ["MLTRAINER_OUTPUT_DIR"]
assert sys.argv[1:] == ["--data", data, "--output", output], sys.argv
config = json.load(open("config.json"))
rows = load_rows(os.path.join(data, "train.csv"))
extra = sorted(os.listdir(os.path.join(data, "extra")))
os.makedirs(os.path.join(output, "model"), exist_ok=True)
with open(os.path.join(output, "model", "weights.bin"), "wb") as out:
    out.write(bytes(range(256)) * 4)
with open(os.path.join(output, "model", "meta.json"), "w") as out:
    json.dump({"rows": len(rows), "extra": extra, "seed": config["seed"]}, out)
with open(os.path.join(os.path.dirname(output), "scratch.txt"), "w") as out:
    out.write("outside the output folder: not brought back")
print("trained on", len(rows), "rows")
"""
HELPERS_PY = """\
import csv


def load_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
"""


@dataclass
class KaggleEnv:
    fake: FakeKaggle
    settings: Settings
    vault: SecretVault
    runtime: KaggleRuntime

    def calls(self, method: str) -> list[dict[str, Any]]:
        """The JSON bodies of the API calls of one method the fake received."""
        return [r.json() for r in self.fake.requests if r.path.endswith(f"/{method}")]

    def fresh_runtime(self) -> KaggleRuntime:
        """Another runtime on the same state: what a restarted server builds."""
        return KaggleRuntime(self.settings, self.vault, dataset_ready_timeout_s=30)


@pytest.fixture
def kaggle_home(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No real credentials or ~/.kaggle: a fake HOME and only the variables a test sets."""
    fake_home = tmp_path / "user"
    fake_home.mkdir()
    monkeypatch.setenv("HOME", str(fake_home))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    return home


def start_kaggle(key: str = KEY, token: str = API_TOKEN) -> FakeKaggle:
    fake = FakeKaggle(key=key, token=token)
    fake.add(FakeDataset("uciml", "iris", "Iris Species", {"Iris.csv": b"a,b\n1,2\n"}))
    fake.competitions["titanic"] = {"train.csv": TRAIN_CSV, "test.csv": TEST_CSV}
    return fake


def kaggle_env(fake: FakeKaggle, home: Path) -> KaggleEnv:
    settings = Settings(home=home, kaggle_api_endpoint=fake.url, allow_loopback_http=True)
    settings.ensure_dirs()
    vault = SecretVault.for_settings(settings)
    runtime = KaggleRuntime(settings, vault, dataset_ready_timeout_s=30)
    return KaggleEnv(fake, settings, vault, runtime)


@pytest.fixture
def kg(kaggle_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KaggleEnv]:
    monkeypatch.setenv("KAGGLE_USERNAME", USERNAME)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    with start_kaggle() as fake:
        yield kaggle_env(fake, kaggle_home)


def make_spec(root: Path, job_id: str = JOB, **changes: Any) -> RemoteSpec:
    """A script job: a run folder (entry, helper, config) and a data folder with a sub-folder."""
    run, data = root / "run", root / "data"
    if not run.exists():
        run.mkdir(parents=True)
        (run / "train.py").write_text(TRAIN_PY)
        (run / "helpers.py").write_text(HELPERS_PY)
        (run / "config.json").write_text('{"seed": 7}')
        (data / "extra").mkdir(parents=True)
        (data / "train.csv").write_bytes(TRAIN_CSV)
        (data / "extra" / "notes.txt").write_text("sub-folders travel as a zip Kaggle unpacks")
    fields: dict[str, Any] = {
        "job_id": job_id,
        "kind": "script",
        "run_dir": run,
        "entry": "train.py",
        "input_dir": data,
        "resources": Resources(timeout_s=3600),
        "title": "A test run",
    }
    return RemoteSpec(**(fields | changes))

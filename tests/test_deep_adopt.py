"""What a deep run sends back is checked before it is registered: plain files, safetensors
weights only, the files every template writes, and the task and label set the job sent.
(The successful path is proven end to end in test_deep_train.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mltrainer.state.errors import NotFound, RemoteServiceError, UntrustedModel
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.jobs.deep import EXPECTED, RUN_FILE, DeepRun
from mltrainer.tools.jobs.deep_adopt import adopt_deep_model

MODEL_ID = "model_0123456789ab"


def sent(run_dir: Path) -> None:
    run_dir.mkdir(parents=True)
    run = DeepRun(
        job_id="job_0123456789ab",
        model_id=MODEL_ID,
        task="image_classification",
        target=None,
        backbone="facebook/convnext-tiny-224",
        metric="f1_macro",
        greater_is_better=True,
        labels=["cat", "dog"],
    )
    (run_dir / RUN_FILE).write_text(run.model_dump_json())
    (run_dir / "plan.json").write_text(json.dumps({"decisions": []}))


def came_back(folder: Path, task: str = "image_classification", labels: list[str] | None = None):
    folder.mkdir(parents=True)
    for name in EXPECTED:
        (folder / name).write_text("{}")
    metrics = {"task": task, "labels": labels or ["cat", "dog"], "test": {"f1_macro": 0.5}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def adopt(settings: Settings, tmp_path: Path) -> None:
    settings.ensure_dirs()
    sent(tmp_path / "run")
    adopt_deep_model(
        tmp_path / "back", tmp_path / "run", settings, Store(settings.db_path), "job_0123456789ab"
    )


def assert_not_registered(settings: Settings) -> None:
    with pytest.raises(NotFound):
        Store(settings.db_path).get_model(MODEL_ID)
    assert not (settings.models_dir / MODEL_ID).exists()


def test_a_pickled_weights_file_sent_back_is_refused(settings: Settings, tmp_path: Path) -> None:
    (came_back(tmp_path / "back") / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(UntrustedModel, match=r"pytorch_model\.bin"):
        adopt(settings, tmp_path)
    assert_not_registered(settings)


def test_a_link_sent_back_is_refused(settings: Settings, tmp_path: Path) -> None:
    (came_back(tmp_path / "back") / "config.json").unlink()
    (tmp_path / "back" / "config.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(UntrustedModel, match="link"):
        adopt(settings, tmp_path)
    assert_not_registered(settings)


def test_a_model_of_another_label_set_is_refused(settings: Settings, tmp_path: Path) -> None:
    came_back(tmp_path / "back", labels=["cat", "dog", "fox"])
    with pytest.raises(UntrustedModel, match="fox"):
        adopt(settings, tmp_path)
    assert_not_registered(settings)


def test_a_model_folder_without_its_weights_is_refused(settings: Settings, tmp_path: Path) -> None:
    (came_back(tmp_path / "back") / "model.safetensors").unlink()
    with pytest.raises(RemoteServiceError, match=r"model\.safetensors"):
        adopt(settings, tmp_path)
    assert_not_registered(settings)

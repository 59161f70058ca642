"""The Gradio Space: its files as deployed to the fake Hub, imported and driven locally (never
launched); the model it serves is downloaded from the fake Hub's model repository."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
import yaml
from deploy_fixtures import CANARY, Trained, hub_settings, vault_with
from fakes.hf import FakeHub

from mltrainer.tools.deploy.deploy import deploy
from mltrainer.tools.deploy.models import DeployOptions, DeployResult

pytest_plugins = ["deploy_fixtures"]
REPO = "fakeuser/churn"
SPACE = "fakeuser/churn-demo"


@pytest.fixture(autouse=True)
def engine_module_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Space loads the model through predict.py, which registers its own copy of the
    engine's custom module in sys.modules (as it must in a Space); this process gets the
    real one back afterwards."""
    import mltrainer.tools.training.engine.custom as custom

    monkeypatch.setitem(sys.modules, custom.__name__, custom)


def deploy_with_space(trained: Trained, hub: FakeHub, model_id: str) -> DeployResult:
    settings = hub_settings(trained, hub)
    vault = vault_with(CANARY, settings)
    return deploy(
        trained.folder(model_id),
        DeployOptions(repo_id=REPO, space=True, private=False),
        token_ref="secret://HF_TOKEN",
        settings=settings,
        vault=vault,
        masker=vault.masker(),
    )


def import_app(hub: FakeHub, target: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The Space's files as the Hub holds them, imported like the Space imports app.py."""
    from huggingface_hub import hf_hub_download

    for name in ("app.py", "schema.json"):
        hf_hub_download(SPACE, name, repo_type="space", local_dir=target, endpoint=hub.url)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    spec = importlib.util.spec_from_file_location("space_app", target / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_space_serves_the_model_like_the_server(
    trained: Trained, hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gradio as gr

    result = deploy_with_space(trained, hub, trained.classifier)
    assert result.space_url == f"{hub.url}/spaces/{SPACE}" and result.space_commit_sha
    space = hub.writer.repo(SPACE, "space")
    assert space.sdk == "gradio" and len(space.commits) == 2

    app = import_app(hub, tmp_path / "space", monkeypatch)
    schema = app.SCHEMA
    assert schema["model_repo"] == REPO and schema["revision"] == result.commit_sha
    demo = app.build_demo()  # downloads model.skops, meta.json, predict.py from the fake Hub
    assert isinstance(demo, gr.Blocks)
    labels = [getattr(block, "label", None) for block in demo.blocks.values()]
    features = app.Predictor(tmp_path / "space" / "model").features
    assert [f["name"] for f in schema["fields"]] == features == ["x1", "x2", "colour"]
    assert all(name in labels for name in features)
    assert "CSV with the input columns" in labels

    predictor = app.Predictor(tmp_path / "space" / "model")
    examples = [field["example"] for field in schema["fields"]]
    answer = predictor.predict_one(*examples)
    expected = trained.loaded(trained.classifier).predict_frame(
        pd.DataFrame([dict(zip(features, examples, strict=True))])
    )
    assert answer == pytest.approx({"no": expected["proba_no"][0], "yes": expected["proba_yes"][0]})

    rows = pd.read_csv(trained.data).drop(columns=["label"]).head(20)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    table = predictor.predict_csv(str(tmp_path / "rows.csv"))
    local = trained.loaded(trained.classifier).predict_frame(rows)
    pd.testing.assert_frame_equal(table[local.columns], local, check_dtype=False)
    with pytest.raises(gr.Error, match="Upload a CSV"):
        predictor.predict_csv(None)


def test_the_form_comes_from_the_data_profile_never_from_rows(
    trained: Trained, hub: FakeHub
) -> None:
    deploy_with_space(trained, hub, trained.classifier)
    files = hub.writer.repo(SPACE, "space").head.files
    fields = {f["name"]: f for f in json.loads(files["schema.json"].data)["fields"]}
    data = pd.read_csv(trained.data)
    assert fields["x1"]["kind"] == "numeric"
    assert fields["x1"]["example"] == pytest.approx(data["x1"].median(), rel=1e-3)
    assert fields["x1"]["example"] not in set(data["x1"])  # a summary, not someone's value
    assert fields["colour"]["kind"] == "categorical"
    assert set(fields["colour"]["choices"]) == {"red", "green", "blue"}


def test_the_space_readme_and_requirements_are_what_the_hub_runs(
    trained: Trained, hub: FakeHub
) -> None:
    deploy_with_space(trained, hub, trained.classifier)
    files = hub.writer.repo(SPACE, "space").head.files
    meta = yaml.safe_load(files["README.md"].data.decode().split("---\n")[1])
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["sdk_version"]
    assert meta["models"] == [REPO]
    requirements = files["requirements.txt"].data.decode().splitlines()
    versions = json.loads((trained.folder(trained.classifier) / "manifest.json").read_text())
    pinned = versions["library_versions"]
    for name in ("scikit-learn", "skops", "numpy", "pandas"):
        assert f"{name}=={pinned[name]}" in requirements


def test_a_newer_model_moves_the_space_to_its_commit(trained: Trained, hub: FakeHub) -> None:
    deploy_with_space(trained, hub, trained.classifier)
    newer = deploy_with_space(trained, hub, trained.regressor)
    space = hub.writer.repo(SPACE, "space")
    assert len(space.commits) == 3
    schema = json.loads(space.head.files["schema.json"].data)
    assert schema["revision"] == newer.commit_sha
    assert [f["name"] for f in schema["fields"]] == ["a", "b"]
    again = deploy_with_space(trained, hub, trained.regressor)
    assert len(space.commits) == 3 and again.space_commit_sha == newer.space_commit_sha


def test_without_the_training_data_the_form_has_kinds_but_no_examples(model_copy: Path) -> None:
    from mltrainer.tools.deploy.folder import read_folder
    from mltrainer.tools.deploy.schema import input_schema

    manifest = json.loads((model_copy / "manifest.json").read_text())
    manifest["data"]["path"] = str(model_copy / "gone.csv")
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    schema = input_schema(read_folder(model_copy))
    assert schema.source == "plan"
    assert [(f.name, f.kind, f.example) for f in schema.fields] == [
        ("x1", "numeric", None),
        ("x2", "numeric", None),
        ("colour", "categorical", None),
    ]

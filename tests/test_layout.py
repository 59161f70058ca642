"""The installed layout: one namespace (mltrainer.*), and saved models that outlive renames."""

from __future__ import annotations

import hashlib
import shutil
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import skops.io

from mltrainer.tools.training.model import load_model

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("server", "tools", "sandbox", "state")
MODELS = Path(__file__).parent / "fixtures" / "models"
LEGACY_MODEL = MODELS / "model_v0_1_0"


def test_every_package_folder_is_installed_under_the_mltrainer_namespace() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = sorted(
        "mltrainer." + ".".join(init.parent.relative_to(REPO).parts)
        for folder in FOLDERS
        for init in (REPO / folder).rglob("__init__.py")
        if "__pycache__" not in init.parts
    )
    assert sorted(config["packages"]) == found
    assert config["package-dir"] == {f"mltrainer.{folder}": folder for folder in FOLDERS}


def test_no_top_level_package_of_ours_is_importable_outside_the_checkout(tmp_path: Path) -> None:
    import subprocess

    probe = (
        "import importlib.util, mltrainer.state.settings\n"
        "print([n for n in ('server', 'tools', 'state', 'sandbox') "
        "if importlib.util.find_spec(n) is not None])"
    )
    out = subprocess.run(
        [sys.executable, "-P", "-c", probe], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# Saved models whose classes' module paths must keep loading (tests/fixtures/models/README.md).
FIXTURES = [
    "blend_main_3be4513",
    "forecast_main_3be4513",
    "transformed_main_5ae10e6",
    "asfloat_main_7ab8376",
    "hist_classifier_main_0be82b7",
    "hist_regressor_main_0be82b7",
]


def test_a_model_saved_by_version_0_1_0_still_loads_and_predicts_the_same() -> None:
    """Models of 0.1.0 recorded module paths such as tools.training.engine.custom.*."""
    meta = (LEGACY_MODEL / "meta.json").read_text()
    assert '"tools.training.engine.custom.XGBClassifierModel"' in meta
    model = load_model(LEGACY_MODEL, sha256=None)
    got = model.predict_frame(pd.read_csv(LEGACY_MODEL / "input.csv"))
    expected = pd.read_csv(LEGACY_MODEL / "expected.csv")
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert "tools.training.engine.custom" not in sys.modules  # the alias is gone again


@pytest.mark.parametrize("name", FIXTURES)
def test_a_model_saved_before_the_engine_was_split_loads_and_predicts_the_same(name: str) -> None:
    """Saved by main before engine/custom.py became a package; between them the two models
    hold every class of it. Their module paths must keep loading, however the package is split."""
    folder = MODELS / name
    found = skops.io.get_untrusted_types(file=folder / "model.skops")
    assert {t.rsplit(".", 1)[0] for t in found} >= {"mltrainer.tools.training.engine.custom"}
    model = load_model(
        folder, sha256=hashlib.sha256((folder / "model.skops").read_bytes()).hexdigest()
    )
    got = model.predict_frame(pd.read_csv(folder / "input.csv"))
    expected = pd.read_csv(folder / "expected.csv")
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-9)


def test_the_fixtures_hold_every_class_a_model_may_hold() -> None:
    from mltrainer.tools.training.engine import custom

    saved = set()
    for name in FIXTURES:
        saved |= set(skops.io.get_untrusted_types(file=MODELS / name / "model.skops"))
    classes = {f"{custom.__name__}.{cls.__name__}" for cls in custom.CLASSES}
    assert classes - saved == {f"{custom.__name__}.XGBModel"}  # the base class, never saved


def test_a_legacy_model_naming_a_type_outside_the_allow_list_is_refused(tmp_path: Path) -> None:
    """A 0.1.0 model file naming another module of the old layout is refused before loading."""
    import zipfile

    from mltrainer.state.errors import UntrustedModel

    folder = tmp_path / "model"
    shutil.copytree(LEGACY_MODEL, folder)
    with zipfile.ZipFile(LEGACY_MODEL / "model.skops") as source:
        members = {info.filename: source.read(info) for info in source.infolist()}
    schema = members["schema.json"].decode()
    assert '"tools.training.engine.custom"' in schema
    members["schema.json"] = schema.replace(
        '"tools.training.engine.custom"', '"tools.training.engine.runner"', 1
    ).encode()
    with zipfile.ZipFile(folder / "model.skops", "w") as target:
        for filename, data in members.items():
            target.writestr(filename, data)
    with pytest.raises(UntrustedModel, match="allow-list") as refused:
        load_model(folder, sha256=None)
    assert "tools.training.engine.runner." in str(refused.value)
    assert "tools.training.engine.runner" not in sys.modules

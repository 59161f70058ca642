"""The installed layout: one namespace (mltrainer.*), and saved models that outlive renames."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from mltrainer.tools.training.model import load_model

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("server", "tools", "sandbox", "state")
LEGACY_MODEL = Path(__file__).parent / "fixtures" / "models" / "model_v0_1_0"


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


def test_a_model_saved_by_version_0_1_0_still_loads_and_predicts_the_same() -> None:
    """Models of 0.1.0 recorded module paths such as tools.training.engine.custom.*."""
    meta = (LEGACY_MODEL / "meta.json").read_text()
    assert '"tools.training.engine.custom.XGBClassifierModel"' in meta
    model = load_model(LEGACY_MODEL)
    got = model.predict_frame(pd.read_csv(LEGACY_MODEL / "input.csv"))
    expected = pd.read_csv(LEGACY_MODEL / "expected.csv")
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert "tools.training.engine.custom" not in sys.modules  # the alias is gone again


def test_a_legacy_model_naming_a_type_outside_the_allow_list_is_refused(tmp_path: Path) -> None:
    import json
    import shutil

    from mltrainer.state.errors import InvalidInput

    folder = tmp_path / "model"
    shutil.copytree(LEGACY_MODEL, folder)
    meta = json.loads((folder / "meta.json").read_text())
    meta["trusted_types"].append("tools.training.engine.runner.Exec")
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInput, match="allow-list"):
        load_model(folder)

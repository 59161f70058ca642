"""The training-script templates as files: linted, type-checked on their own, standalone (no
import of this project), and in step with the config the planner writes. No torch needed."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mltrainer.tools.deep import catalogue
from mltrainer.tools.deep.models import TEMPLATE, ScriptConfig

TEMPLATES = Path(__file__).resolve().parent.parent / "tools" / "deep" / "templates"
SCRIPTS = sorted(TEMPLATES.glob("*.py"))
BIN = Path(sys.executable).parent


def test_there_is_one_script_per_task_family() -> None:
    assert sorted(TEMPLATE.values()) == sorted(
        p.name for p in SCRIPTS if p.name.startswith("train_")
    )


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_template_imports_nothing_of_this_project(script: Path) -> None:
    """They run on a remote GPU machine where mltrainer-mcp is not installed."""
    tree = ast.parse(script.read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [name for name in imported if name.split(".")[0] in ("mltrainer", "tools")]


def test_every_config_key_a_template_reads_is_written_by_the_planner() -> None:
    read: set[str] = {"labels"}
    for script in SCRIPTS:
        text = script.read_text()
        read |= set(re.findall(r"run\[\"(\w+)\"\]", text))
        read |= set(re.findall(r"run\.config\.get\(\"(\w+)\"\)", text))
    assert read - set(ScriptConfig.model_fields) == set()
    assert len(read) > 20


def test_the_architectures_the_planner_sends_are_those_the_dry_run_can_build() -> None:
    tree = ast.parse((TEMPLATES / "deep_tiny.py").read_text())
    sizes = next(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and node.target.id == "TINY_SIZES"
    )
    assert isinstance(sizes, ast.Dict)
    assert {ast.literal_eval(k) for k in sizes.keys if k is not None} == catalogue.DRY_RUNNABLE
    assert {b.model_type for b in catalogue.BACKBONES} <= catalogue.DRY_RUNNABLE


def test_the_templates_pass_ruff() -> None:
    done = subprocess.run(
        [str(BIN / "ruff"), "check", "--no-cache", str(TEMPLATES)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_templates_type_check_on_their_own(tmp_path: Path) -> None:
    """As shipped: side by side in one folder, every function typed, calls between them checked."""
    for script in SCRIPTS:
        if script.name != "__init__.py":
            shutil.copy(script, tmp_path / script.name)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--no-site-packages",
            "--ignore-missing-imports",
            "--disallow-untyped-defs",
            "--check-untyped-defs",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            *sorted(p.name for p in tmp_path.glob("*.py")),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dry_run_tests_skip_without_the_extra_and_fail_when_ci_requires_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import test_deep_dryrun

    monkeypatch.setattr(test_deep_dryrun, "EXTRA", ("torch", "no_such_module_xyz"))
    monkeypatch.delenv("MLTRAINER_REQUIRE_EXTRAS", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"no_such_module_xyz.*torch==2.13.0"):
        test_deep_dryrun.require_deep_extra()
    monkeypatch.setenv("MLTRAINER_REQUIRE_EXTRAS", "1")
    with pytest.raises(
        pytest.fail.Exception, match="MLTRAINER_REQUIRE_EXTRAS=1 but the deep extra"
    ):
        test_deep_dryrun.require_deep_extra()

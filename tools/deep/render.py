"""Render a plan: its family's script, the three helper modules and ``config.json``, in one folder.

No code is generated: the scripts are the template files as they are in the repository, and
the plan reaches them only as data (``config.json``, a ``ScriptConfig``). The folder is what a
runtime ships: ``python train.py --data INPUT --output OUTPUT`` (see ``templates/deep_common``).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, Field

from mltrainer.tools.deep.models import DeepPlan, ScriptConfig, ScriptFields
from mltrainer.tools.deep.planner import PIPELINE_TAG

HELPERS = ("deep_common.py", "deep_infer.py", "deep_tiny.py")
SCRIPT = "train.py"


class RenderedRun(BaseModel):
    folder: str = Field(description="The folder to ship: the script, its helpers, config.json.")
    script: str
    config: str
    input_dir: str | None = Field(default=None, description="The prepared data, when written.")
    requirements: list[str]


def script_config(plan: DeepPlan) -> ScriptConfig:
    shared = plan.model_dump(include=set(ScriptFields.model_fields))
    return ScriptConfig(**shared, pipeline_tag=PIPELINE_TAG[plan.task])


def template_text(name: str) -> str:
    return resources.files("mltrainer.tools.deep.templates").joinpath(name).read_text("utf-8")


def render(plan: DeepPlan, folder: Path, input_dir: Path | None = None) -> RenderedRun:
    """Write the run folder (readable by the sandbox's unprivileged user)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SCRIPT).write_text(template_text(plan.template), encoding="utf-8")
    for helper in HELPERS:
        (folder / helper).write_text(template_text(helper), encoding="utf-8")
    config = folder / "config.json"
    config.write_text(script_config(plan).model_dump_json(indent=2), encoding="utf-8")
    (folder / "requirements.txt").write_text("\n".join(plan.requirements) + "\n", encoding="utf-8")
    (folder / "plan.json").write_text(plan.model_dump_json(indent=2), encoding="utf-8")
    readable(folder)
    return RenderedRun(
        folder=str(folder),
        script=str(folder / SCRIPT),
        config=str(config),
        input_dir=str(input_dir) if input_dir else None,
        requirements=plan.requirements,
    )


def readable(root: Path) -> None:
    """Directories 0755 and files 0644: the Docker sandbox reads them as another user."""
    for directory, _, names in os.walk(root):
        os.chmod(directory, 0o755)
        for name in names:
            os.chmod(os.path.join(directory, name), 0o644)

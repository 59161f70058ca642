"""What runs inside the Modal container: the job's entry script, then its outputs onto the
job's Volume; and, for an engine job with ``parallel`` > 1, its search trials, one per
container (``run_trial``). Imported there from the project's source mounted in the image;
stdlib and ``modal`` only at import (the engine is imported by the functions that use it).

The Volume of a job (``mltrainer-<job>``) holds ``run/`` and ``input/`` (uploaded before the
submission) and receives ``output/``. A Modal Dict (``mltrainer-submissions``) maps each job
to the one call that works on it: the first container to claim a job runs it, any other
call for the same job returns at once, so a submission repeated after a crash never trains,
nor bills, twice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

MOUNT = "/mltrainer"
SUBMISSIONS = "mltrainer-submissions"


def volume_name(job_id: str) -> str:
    return f"mltrainer-{job_id.replace('_', '-')}"


def run_entry(job_id: str, entry: str, outputs: list[str]) -> dict[str, str]:
    """The Modal function: run ``run/<entry>`` on ``input/``, keep ``outputs`` (all when
    empty) in ``output/``, commit the Volume. A failing script fails the call."""
    import modal

    call_id = modal.current_function_call_id() or ""
    claims = modal.Dict.from_name(SUBMISSIONS, create_if_missing=True)
    if not claims.put(job_id, call_id, skip_if_exists=True) and claims.get(job_id) != call_id:
        return {"duplicate_of": str(claims.get(job_id))}
    claims.put(call_id, job_id)
    root, scratch = Path(MOUNT), Path("/tmp/mltrainer-output")
    scratch.mkdir(parents=True, exist_ok=True)
    data = root / "input"
    env = dict(os.environ, MLTRAINER_INPUT_DIR=str(data), MLTRAINER_OUTPUT_DIR=str(scratch))
    env |= fanout_env(job_id)
    command = [
        sys.executable,
        str(root / "run" / entry),
        "--data",
        str(data),
        "--output",
        str(scratch),
    ]
    code = subprocess.call(command, env=env, cwd=root / "run")
    keep(scratch, root / "output", outputs)
    modal.Volume.from_name(volume_name(job_id)).commit()
    if code != 0:
        raise RuntimeError(f"The script exited with code {code}; the end of its log says why.")
    return {"exit_code": "0"}


def fanout_env(job_id: str) -> dict[str, str]:
    """What tells the engine it runs in a Modal container: its search (with parallel > 1)
    then fans out to ``run_trial`` of the job's app."""
    from mltrainer.tools.training.engine.fanout import APP_ENV, FANOUT_ENV, VOLUME_ENV

    return {FANOUT_ENV: "modal", APP_ENV: volume_name(job_id), VOLUME_ENV: volume_name(job_id)}


def run_trial(volume: str, trial: Any, deadline: float) -> Any:
    """The fan-out Modal function of an engine job with ``parallel`` > 1: one search trial
    (a fanout.Trial) in its own container, on the Problem the job's engine wrote once to the
    Volume ``volume``; returns its fanout.Outcome. ``deadline``: epoch seconds."""
    import modal

    from mltrainer.tools.training.engine.fanout import trial_in_container

    reload = modal.Volume.from_name(volume).reload
    return trial_in_container(Path(MOUNT), trial, deadline, reload=reload)


def keep(scratch: Path, output: Path, outputs: list[str]) -> None:
    """Copy the outputs asked for (every file when none were named) into ``output``."""
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    for name in outputs or [p.name for p in scratch.iterdir()]:
        source = scratch / name
        if source.is_dir():
            shutil.copytree(source, output / name)
        elif source.is_file():
            (output / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, output / name)

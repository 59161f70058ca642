"""What runs inside the Modal container: the job's entry script, then its outputs onto the
job's Volume. Imported there from the project's source mounted in the image; stdlib and
``modal`` only.

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

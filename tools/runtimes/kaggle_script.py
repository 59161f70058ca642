"""The one file a Kaggle kernel runs, and its metadata.

A Kaggle kernel is a single source file. We ship the run folder (entry script, helpers,
config) *inside* that file as a deterministic zip, base64-encoded, and a short bootstrap
unpacks it to a temporary folder and runs the entry script with the mltrainer contract:
``MLTRAINER_INPUT_DIR`` (and ``--data``) is where Kaggle mounted the data under
/kaggle/input, ``MLTRAINER_OUTPUT_DIR`` (and ``--output``) is /kaggle/working/output, which
Kaggle keeps as the kernel's output. Why one file rather than code uploaded with the data:
the code a run used is then the kernel version itself (visible and re-runnable on
kaggle.com); a run on a kaggle:/kaggle-competition: source uploads nothing at all; and a
change of code never makes a new version of the person's data. The engine's entry point
imports ``mltrainer``, which Kaggle's image lacks: an engine job's bundle carries the
project's packages too (tools, state, sandbox: about 450 kB zipped), beside the entry script.

Nothing from the spec is pasted into code: every value enters the script as a Python
literal (``repr``). Two marker lines identify the job and the exact spec, so a kernel is
recognised as ours and the same spec is never pushed twice.
"""

from __future__ import annotations

import base64
import hashlib
import io
import stat
import string
import zipfile
from pathlib import Path

from pydantic import BaseModel

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.runtimes.base import RemoteSpec
from mltrainer.tools.runtimes.kaggle_limits import (
    Machine,
    kernel_slug,
    kernel_title,
    valid_job_id,
)

CODE_FILE = "mltrainer_kernel.py"
OUTPUT_DIR = "output"  # under /kaggle/working: what fetch brings back
ROOT_ENV = "MLTRAINER_KAGGLE_ROOT"  # "/kaggle" unless set (the fake Kaggle runs kernels elsewhere)
JOB_MARKER, SPEC_MARKER = "# mltrainer-job: ", "# mltrainer-spec: "
_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: the same folder gives the same bytes


class KernelMetadata(BaseModel):
    """kernel-metadata.json, the file `kaggle kernels push` reads."""

    id: str
    title: str
    code_file: str = CODE_FILE
    language: str = "python"
    kernel_type: str = "script"
    is_private: bool = True
    enable_gpu: bool
    enable_tpu: bool = False
    enable_internet: bool
    dataset_sources: list[str]
    competition_sources: list[str]
    kernel_sources: list[str] = []
    model_sources: list[str] = []
    machine_shape: str | None = None


class KernelPlan(BaseModel):
    metadata: KernelMetadata
    script: str
    digest: str  # of script, metadata and timeout: the same spec gives the same digest

    def write(self, folder: Path) -> None:
        (folder / "kernel-metadata.json").write_text(self.metadata.model_dump_json(indent=2))
        (folder / CODE_FILE).write_text(self.script, encoding="utf-8")


def bundle(run_dir: Path, code_dir: Path | None = None) -> bytes:
    """The run folder as a zip whose bytes depend only on the files' paths and contents;
    with ``code_dir`` (a folder holding ``mltrainer/``), the project's code beside it."""
    buffer = io.BytesIO()
    roots = [run_dir] if code_dir is None else [code_dir, run_dir]
    files = {p.relative_to(root): p for root in roots for p in root.rglob("*")}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel_path, path in sorted(files.items()):
            rel = rel_path.as_posix()
            if not path.is_file() or path.is_symlink() or _skipped(rel_path):
                continue
            info = zipfile.ZipInfo(rel, date_time=_EPOCH)
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _skipped(rel: Path) -> bool:
    """Byte-code caches and Finder litter: they would change the digest, not the run."""
    return "__pycache__" in rel.parts or rel.suffix == ".pyc" or rel.name == ".DS_Store"


def plan(
    spec: RemoteSpec,
    *,
    owner: str,
    machine: Machine,
    mounts: list[str],
    dataset_sources: list[str],
    competition_sources: list[str],
    data_digest: str | None,
    code_dir: Path | None = None,
) -> KernelPlan:
    """The kernel for ``spec``: its metadata and its one script (``mounts``: the folder names
    under /kaggle/input the data may be mounted at, first match wins; ``data_digest``: of the
    uploaded data, so that new data makes a new kernel version; ``code_dir``: the project's
    code for the engine's entry point, which imports ``mltrainer``: Kaggle's image has none,
    and the entry script's folder is on its ``sys.path``)."""
    if not valid_job_id(spec.job_id):  # it goes into a comment line: check it again
        raise InvalidInput(f"'{spec.job_id[:80]}' is not a job id a Kaggle kernel can carry.")
    metadata = KernelMetadata(
        id=f"{owner}/{kernel_slug(spec.job_id)}",
        title=kernel_title(spec.job_id),
        enable_gpu=machine.gpus > 0,
        enable_internet=spec.internet,
        dataset_sources=dataset_sources,
        competition_sources=competition_sources,
        machine_shape=machine.machine_shape,
    )
    encoded = base64.b64encode(bundle(spec.run_dir, code_dir)).decode()
    lines = [encoded[i : i + 96] for i in range(0, len(encoded), 96)]
    values = {
        "job_id": spec.job_id,
        "title": spec.title,
        "entry": spec.entry,
        "mounts": mounts,
        "requirements": spec.requirements,
        "internet": spec.internet,
        "data_digest": data_digest,
    }
    body = _TEMPLATE.substitute(
        job_line=JOB_MARKER + spec.job_id,
        spec_line=SPEC_MARKER + "{digest}",
        root_env=repr(ROOT_ENV),
        output_dir=repr(OUTPUT_DIR),
        bundle="(\n" + "".join(f"    {line!r},\n" for line in lines) + ")",
        **{name: repr(value) for name, value in values.items()},
    )
    hashed = body + metadata.model_dump_json() + f"timeout={spec.resources.timeout_s}"
    digest = hashlib.sha256(hashed.encode()).hexdigest()[:32]
    return KernelPlan(metadata=metadata, script=body.replace("{digest}", digest, 1), digest=digest)


def marker(source: str, prefix: str) -> str | None:
    """The value of a marker line (JOB_MARKER, SPEC_MARKER) in a kernel's source, if any."""
    for line in source.splitlines()[:5]:
        if line.startswith(prefix):
            return line.removeprefix(prefix).strip()
    return None


_TEMPLATE = string.Template(
    '''\
# Generated by mltrainer-mcp for a Kaggle kernel; each run of the job replaces it.
$job_line
$spec_line
"""Unpacks the run folder carried below and runs its entry script with the mltrainer
contract: the data in MLTRAINER_INPUT_DIR (--data), results into MLTRAINER_OUTPUT_DIR
(--output), which is /kaggle/working/output, kept by Kaggle as the kernel's output."""
import base64
import io
import os
import subprocess
import sys
import tempfile
import zipfile

JOB_ID = $job_id
TITLE = $title
ENTRY = $entry
MOUNTS = $mounts
REQUIREMENTS = $requirements
INTERNET = $internet
DATA_DIGEST = $data_digest  # the uploaded data's content: other data, another kernel version
ROOT = os.environ.get($root_env, "/kaggle")
BUNDLE = $bundle


def input_dir():
    """Where Kaggle mounted the data: /kaggle/input/NAME, or NAME found a few levels down."""
    base = os.path.join(ROOT, "input")
    for name in MOUNTS:
        if os.path.isdir(os.path.join(base, name)):
            return os.path.join(base, name)
        for parent, dirs, _ in os.walk(base):
            if name in dirs:
                return os.path.join(parent, name)
            if parent[len(base):].count(os.sep) >= 3:
                dirs[:] = []
    if MOUNTS:
        raise RuntimeError("mltrainer: the data (%s) is not mounted under %s" % (MOUNTS, base))
    return tempfile.mkdtemp(prefix="mltrainer-input-")


def unmet_requirements():
    """(requirement, why) for each pinned requirement the kernel's image does not meet."""
    from importlib import metadata

    from packaging.requirements import Requirement

    unmet = []
    for text in REQUIREMENTS:
        wanted = Requirement(text)
        try:
            have = metadata.version(wanted.name)
        except metadata.PackageNotFoundError:
            unmet.append((text, "not installed"))
            continue
        if not wanted.specifier.contains(have, prereleases=True):
            unmet.append((text, "the Kaggle image has %s" % have))
    return unmet


def requirements():
    unmet = unmet_requirements() if REQUIREMENTS else []
    if not unmet:
        return
    if INTERNET:  # only what the image lacks, at the exact versions asked for
        subprocess.check_call(
            [sys.executable, "-m", "pip", "install", "--quiet", *[text for text, _ in unmet]]
        )
        return
    raise RuntimeError(
        "mltrainer: internet is off in this kernel, so these requirements cannot be "
        "installed: %s. Submit again with internet on, or pin what the image has."
        % "; ".join("%s (%s)" % pair for pair in unmet)
    )


def main():
    run = tempfile.mkdtemp(prefix="mltrainer-run-")
    with zipfile.ZipFile(io.BytesIO(base64.b64decode("".join(BUNDLE)))) as archive:
        archive.extractall(run)
    data = input_dir()
    output = os.path.join(ROOT, "working", $output_dir)
    os.makedirs(output, exist_ok=True)
    requirements()
    env = dict(os.environ, MLTRAINER_INPUT_DIR=data, MLTRAINER_OUTPUT_DIR=output)
    env.pop("MLTRAINER_DRY_RUN", None)
    print("mltrainer: job %s: running %s" % (JOB_ID, ENTRY), flush=True)
    command = [sys.executable, os.path.join(run, ENTRY), "--data", data, "--output", output]
    code = subprocess.call(command, cwd=run, env=env)
    if code:
        raise RuntimeError("mltrainer: %s exited with status %d" % (ENTRY, code))


main()
'''
)

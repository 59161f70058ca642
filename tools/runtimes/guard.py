"""The pre-flight guard: what is checked before a run is pushed anywhere or paid for.

In order, cheapest first: the spec against what the provider accepts (GPU type, counts,
CPU and memory, timeout, parallel runs, data size: ``Runtime.validate``), the size of the
data to ship, the cost estimate against the cap (``max_cost_usd``, else the setting
``MLTRAINER_MAX_COST_USD``), the script's syntax, and then a **dry run**: the entry script
runs in the local sandbox on a sample of the data (the first rows of each table), with
``MLTRAINER_DRY_RUN=1`` and no GPU, and must write its outputs. A syntax error, a missing
import, a wrong column name or a wrong output path fails here in seconds.

``preflight`` returns a typed ``GuardReport`` (what was checked, the estimate and the date
of its prices, the cap, the dry run's outcome); ``GuardReport.raise_if_refused`` turns a
failed check into one error that says what to change. The sandbox runs the fixed launcher
below; the paths reach it as one JSON literal (no code is composed from arguments).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from mltrainer.sandbox.calls import StopSignal
from mltrainer.sandbox.manager import SandboxManager
from mltrainer.sandbox.models import RunResult
from mltrainer.state.settings import Settings
from mltrainer.tools.runtimes.base import CostEstimate, RemoteSpec, Runtime
from mltrainer.tools.runtimes.files import SAMPLE, readable, size_bytes
from mltrainer.tools.runtimes.models import Check, DryRun, GuardReport
from mltrainer.tools.runtimes.sample import make_sample
from mltrainer.tools.runtimes.source import source_copy

GB = 1024**3
OUTPUT = "output"
TAIL = 3000
LAUNCHER = """
import os, runpy, sys
out = os.path.abspath(RUN["output"])
os.makedirs(out, exist_ok=True)
os.environ.update(RUN["env"], MLTRAINER_OUTPUT_DIR=out)
sys.argv = [RUN["script"], "--data", RUN["env"]["MLTRAINER_INPUT_DIR"], "--output", out]
sys.path[:0] = RUN["path"]
try:
    runpy.run_path(RUN["script"], run_name="__main__")
except SystemExit as stop:
    if stop.code not in (None, 0):
        raise
"""
DRY_ENV = {
    "MLTRAINER_DRY_RUN": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


def preflight(
    spec: RemoteSpec,
    runtime: Runtime,
    sandbox: SandboxManager | None,
    settings: Settings,
    *,
    cap: float | None,
    mode: Literal["dry_run", "submission"],
    expected: list[str],
    spread_column: str | None = None,
) -> GuardReport:
    """Check ``spec`` for ``runtime``; the dry run only once every cheaper check passed.

    ``expected``: paths the entry point must write into its output folder (an empty list:
    at least one file). ``sandbox`` None: no dry run (the local runtime's engine jobs run in
    the worker as local jobs always have).
    """
    problems = runtime.validate(spec)
    checks = [
        Check(
            name="spec",
            ok=not problems,
            detail="; ".join(f"{p.field}: {p.message}" for p in problems)
            or f"{runtime.name} accepts the GPU, CPU, memory, timeout and parallel runs asked",
        )
    ]
    if runtime.name != "local" and spec.input_dir is not None:
        checks.append(_size_check(spec.input_dir, settings))
    estimate = runtime.estimate_cost(spec)
    limit = settings.max_cost_usd if cap is None else cap
    checks.append(_cost_check(estimate, limit, cap))
    checks.append(_syntax_check(spec))
    dry = None
    if sandbox is not None and all(c.ok for c in checks):
        dry = dry_run(spec, sandbox, settings, expected=expected, spread_column=spread_column)
        checks.append(Check(name="dry run", ok=dry.ok, detail=_dry_detail(dry)))
    return GuardReport(
        ok=all(c.ok for c in checks),
        mode=mode,
        runtime=runtime.name,
        checks=checks,
        resources=spec.resources,
        estimate=estimate,
        cap_usd=limit,
        cap_from="MLTRAINER_MAX_COST_USD" if cap is None else "max_cost_usd",
        dry_run=dry,
    )


def _size_check(input_dir: Path, settings: Settings) -> Check:
    size = size_bytes(input_dir)
    limit = settings.remote_max_upload_gb * GB
    detail = f"{size / GB:.3g} GB of data to ship"
    if size > limit:
        detail += (
            f", more than the {settings.remote_max_upload_gb:g} GB allowed "
            "(MLTRAINER_REMOTE_MAX_UPLOAD_GB): sample the data or use a smaller file"
        )
    return Check(name="data size", ok=size <= limit, detail=detail)


def _cost_check(estimate: CostEstimate, limit: float, cap: float | None) -> Check:
    source = "max_cost_usd" if cap is not None else "MLTRAINER_MAX_COST_USD"
    detail = (
        f"at most ${estimate.usd:.2f} ({estimate.basis}; prices of {estimate.prices_as_of}) "
        f"against a cap of ${limit:.2f} ({source})"
    )
    if estimate.usd > limit:
        detail += ": lower the timeout or the time budget, pick a cheaper GPU, or raise the cap"
    return Check(name="cost", ok=estimate.usd <= limit, detail=detail)


def _syntax_check(spec: RemoteSpec) -> Check:
    script = spec.run_dir / spec.entry
    try:
        compile(script.read_text("utf-8"), spec.entry, "exec")
    except SyntaxError as exc:
        return Check(
            name="syntax",
            ok=False,
            detail=f"{spec.entry} line {exc.lineno}: {exc.msg}: fix the script",
        )
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return Check(name="syntax", ok=False, detail=f"{spec.entry} cannot be read: {exc}")
    return Check(name="syntax", ok=True, detail=f"{spec.entry} compiles")


def dry_run(
    spec: RemoteSpec,
    sandbox: SandboxManager,
    settings: Settings,
    *,
    expected: list[str],
    spread_column: str | None = None,
) -> DryRun:
    """Run the entry script in the sandbox on a sample; never raises for its failure."""
    sample = None
    data = None
    if spec.input_dir is not None:
        data = spec.run_dir.parent / SAMPLE
        sample = make_sample(
            spec.input_dir, data, settings.dry_run_rows, spread_column=spread_column
        )
        readable(data)
    result = run_in_sandbox(
        spec, sandbox, settings, data=data, dry=True, timeout_s=settings.dry_run_timeout_s
    )
    output = Path(result.workspace) / OUTPUT
    written = outputs_in(output)
    dry = DryRun(
        ok=False,
        status=result.status,
        duration_s=result.duration_s,
        backend=result.backend,
        written=written,
        missing=[name for name in expected if not (output / name).exists()],
        sample=sample,
        stdout_tail=(result.stdout or "")[-TAIL:],
        stderr_tail=(result.stderr or "")[-TAIL:],
    )
    dry.problem = _problem(dry, result.reason, spec)
    dry.ok = dry.problem is None
    return dry


def run_in_sandbox(
    spec: RemoteSpec,
    sandbox: SandboxManager,
    settings: Settings,
    *,
    data: Path | None,
    dry: bool,
    timeout_s: float,
    stop: StopSignal | None = None,
) -> RunResult:
    """Run the entry script in the sandbox as a runtime would: ``data`` as its input folder,
    ``output/`` of the workspace as its output folder. The run folder, the data and (for the
    engine) the project's code are mounted read-only."""
    mounts = [spec.run_dir]
    env = dict(DRY_ENV) if dry else {}
    env["MLTRAINER_INPUT_DIR"] = str(data or spec.run_dir)  # a real folder, even when empty
    if data is not None:
        mounts.append(data)
    path = [str(spec.run_dir)]
    if spec.kind == "engine":
        source = source_copy(settings.home)
        mounts.append(source)
        path.insert(0, str(source))
    for mount in mounts:  # a server that started since may have made the folders private
        readable(mount)
    run = {"script": str(spec.run_dir / spec.entry), "output": OUTPUT, "env": env, "path": path}
    code = f"RUN = {json.dumps(run)}\n{LAUNCHER}"
    result, _ = sandbox.run(code, timeout_s=timeout_s, own_files=mounts, stop=stop)
    return result


def outputs_in(folder: Path) -> list[str]:
    """The files under ``folder``, relative to it; [] when it does not exist."""
    if not folder.is_dir():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _problem(dry: DryRun, reason: str | None, spec: RemoteSpec) -> str | None:
    if dry.status == "timeout":
        return f"it did not finish in the dry run's time ({reason or 'timeout'})"
    if dry.status != "ok":
        last = _last_line(dry.stderr_tail) or reason or dry.status
        if "ModuleNotFoundError" in last and spec.requirements:
            last += (
                " (the dry run uses this machine's packages: install the missing one here, "
                "or remove the import)"
            )
        return f"it failed: {last}"
    if not dry.written:
        return "it wrote nothing into MLTRAINER_OUTPUT_DIR (the output folder), so nothing would come back"
    if dry.missing:
        return f"it did not write {', '.join(dry.missing)} into MLTRAINER_OUTPUT_DIR"
    return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _dry_detail(dry: DryRun) -> str:
    if dry.problem is None:
        return (
            f"the entry point ran on a sample in {dry.duration_s:.1f} s ({dry.backend} sandbox) "
            f"and wrote {len(dry.written)} file(s)"
        )
    return f"the entry point, run on a sample in the sandbox, {dry.problem}"

"""The dry-run proof: a rendered script runs end to end in the local sandbox before any GPU.

With ``MLTRAINER_DRY_RUN=1`` the script builds a tiny randomly initialised model of the
planned architecture (no download), trains two steps on a few records, evaluates, saves,
reloads and predicts. The sandbox sees the run folder and its input read-only and writes the
model folder into its workspace; the report says what ran, how long, and what was missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mltrainer.sandbox.manager import SandboxManager
from mltrainer.state.errors import MLTrainerError
from mltrainer.tools.deep.render import RenderedRun

# Files every model folder must hold after a run (besides the tokenizer or image processor).
MODEL_FILES = (
    "model.safetensors",
    "config.json",
    "metrics.json",
    "training_curves.png",
    "README.md",
    "reload_check.json",
)
PROCESSOR_FILES = ("tokenizer.json", "tokenizer_config.json", "preprocessor_config.json")
OUTPUT = "model"
# The launcher is fixed code; the paths reach it as one JSON literal (no code is composed).
LAUNCHER = """
import os, runpy, sys
os.environ.update({
    "MLTRAINER_DRY_RUN": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
    "HF_HOME": "/tmp/mltrainer-hf", "TOKENIZERS_PARALLELISM": "false",
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
})
sys.argv = ["train.py", "--config", RUN["config"], "--data", RUN["data"], "--output", RUN["output"]]
sys.path.insert(0, RUN["folder"])
runpy.run_path(RUN["script"], run_name="__main__")
"""
TIMEOUT_S = 300.0
TAIL = 4000


class DryRunFailed(MLTrainerError):
    """A rendered training script failed its dry run: it must not reach a paid machine."""


class DryRunReport(BaseModel):
    ok: bool
    status: str = Field(description="The sandbox's status: ok, error, timeout or killed.")
    duration_s: float
    backend: str
    model_dir: str | None = Field(description="The model folder the dry run wrote.")
    files: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list, description="Expected files not written.")
    test_metrics: dict[str, float] = Field(default_factory=dict)
    reload_predictions: int = 0
    stderr_tail: str = ""

    def raise_for_failure(self) -> None:
        if self.ok:
            return
        why = f"status {self.status}"
        if self.missing:
            why += f", missing {', '.join(self.missing)}"
        raise DryRunFailed(
            f"The training script failed its dry run ({why}): {self.stderr_tail.strip()[-1500:]}",
            next_step="Nothing was submitted. Fix the data or plan named in the error, or "
            "report the failing template.",
        )


def dry_run(
    run: RenderedRun, sandbox: SandboxManager, *, timeout_s: float = TIMEOUT_S
) -> DryRunReport:
    """Run the rendered script in the sandbox in dry-run mode; never raises for its failure."""
    if run.input_dir is None:
        raise ValueError("render() the run with its input folder first")
    paths = {
        "folder": run.folder,
        "script": run.script,
        "config": run.config,
        "data": run.input_dir,
        "output": OUTPUT,
    }
    code = f"RUN = {json.dumps(paths)}\n{LAUNCHER}"
    mounts = sorted({run.folder, run.input_dir})
    result, _ = sandbox.run(code, timeout_s=timeout_s, own_files=[Path(m) for m in mounts])
    model_dir = Path(result.workspace) / OUTPUT
    files = sorted(p.name for p in model_dir.iterdir()) if model_dir.is_dir() else []
    missing = [name for name in MODEL_FILES if name not in files]
    if not any(name in files for name in PROCESSOR_FILES):
        missing.append("a tokenizer or image processor")
    test = _read_json(model_dir / "metrics.json").get("test") or {}
    reloaded = _read_json(model_dir / "reload_check.json").get("inputs") or 0
    return DryRunReport(
        ok=result.status == "ok" and not missing,
        status=result.status,
        duration_s=result.duration_s,
        backend=result.backend,
        model_dir=str(model_dir) if model_dir.is_dir() else None,
        files=files,
        missing=missing,
        test_metrics={k: float(v) for k, v in test.items() if isinstance(v, int | float)},
        reload_predictions=int(reloaded),
        stderr_tail=(result.stderr or "")[-TAIL:] + (result.reason or ""),
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}

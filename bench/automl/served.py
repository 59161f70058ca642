"""Our engine the way a person meets it: ``train_model`` through the real MCP server.

The ``served`` contestant writes the training rows to a file (not timed: the person's file
exists already), then times everything from the ``train_model`` call to the job's final model:
the worker process, loading, profiling, planning, the search, the honest holdout and the refit.
It polls ``job_status`` (every 0.25 s, in this process) to record when the first usable model
(the anytime baseline, ``model_id`` set) appears, then predicts the test rows with ``predict``.
The server is ``mltrainer serve`` over stdio in its own process, as a client would start it; the
job runs in the worker the server spawns. The tree sampler (``bench.automl.run``) counts those
two and leaves out this client process, which holds the benchmark's data to score it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.automl.scoring import PRIMARY, Predictions

POLL_S = 0.25
# Seconds between connecting and the call (default 0: the call at once). A person's request
# comes some time after the host started the server; by then the spare worker has loaded the
# training libraries (tools/jobs/spare.py), which a call made at once mostly does not find.
CALL_AFTER_ENV = "BENCH_CALL_AFTER_S"
TERMINAL = {"succeeded", "failed", "cancelled"}


def _write(frame: pd.DataFrame, path: Path) -> Path:
    """Parquet keeps dtypes and writes large frames in seconds; CSV is for small ones."""
    if len(frame) >= 100_000:
        path = path.with_suffix(".parquet")
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


async def _train_and_predict(run: Any, folder: Path) -> Predictions:
    from mcp import Client, StdioServerParameters

    spec = run.split.spec
    train_path = _write(run.split.train_frame, folder / "train.csv")
    test_path = _write(run.split.X_test, folder / "test.csv")
    arguments = {
        "dataset": str(train_path),
        "target": spec.target,
        "task": spec.task,
        "metric": PRIMARY[spec.task],
        "time_budget_s": run.budget_s,
        "seed": run.seed,
        "wait_s": 0,
        "plots": False,
    }
    if spec.positive_class is not None:
        arguments["positive_class"] = spec.positive_class
    server = StdioServerParameters(
        command=sys.executable,
        args=["-P", "-m", "mltrainer.server.cli", "serve"],
        env={**os.environ, "MLTRAINER_HOME": str(folder / "home")},
        cwd=str(folder),  # the current directory is an allowed data root
    )
    async with Client(server) as client:
        await asyncio.sleep(float(os.environ.get(CALL_AFTER_ENV) or 0))
        called = time.perf_counter()
        answer = await client.call_tool("train_model", arguments)
        if answer.is_error:
            raise RuntimeError(f"train_model refused: {answer.content}")
        job = answer.structured_content or {}
        first_model_s = 0.0 if job.get("model_id") else None
        while job.get("status") not in TERMINAL:
            await asyncio.sleep(POLL_S)
            status = await client.call_tool("job_status", {"job_id": job["job_id"]})
            job = status.structured_content or {}
            if first_model_s is None and job.get("model_id"):
                first_model_s = time.perf_counter() - called
        final_s = time.perf_counter() - called
        if job.get("status") != "succeeded":
            raise RuntimeError(f"job {job.get('status')}: {job.get('error')}")
        predicted = await client.call_tool(
            "predict", {"model": job["job_id"], "dataset": str(test_path)}
        )
        if predicted.is_error:
            raise RuntimeError(f"predict failed: {predicted.content}")
        path = (predicted.structured_content or {})["predictions_path"]
    result = job.get("result") or {}
    stages, spawn_s, timeline = _stage_seconds(folder / "home", job["job_id"])
    notes = {
        "stages_s": stages,
        "call_to_worker_s": spawn_s,
        "call_to_final_s": round(final_s, 2),
        "first_model_s": None if first_model_s is None else round(first_model_s, 2),
        "job_elapsed_s": job.get("elapsed_s"),
        "model": result.get("model_name") or result.get("model"),
        "stopped": result.get("search_stopped"),
        "refit": result.get("refit"),
        "timeline": timeline,
        "decisions": [
            f"{d['stage']}: {d['decision']} ({d['reason']})" for d in result.get("decisions", [])
        ],
    }
    return _predictions(spec.task, pd.read_csv(path), notes)


def _stage_seconds(home: Path, job_id: str) -> tuple[dict[str, float], float | None, list[str]]:
    """How long each stage of the job took, from the job's creation to its first stage, and its
    events, each at its seconds since the creation (where the budget went)."""
    from mltrainer.state.secrets import SecretVault
    from mltrainer.state.settings import Settings
    from mltrainer.state.store import Store

    settings = Settings(home=home)
    store = Store(settings.db_path, SecretVault.for_settings(settings).masker())
    job = store.get_job(job_id)
    stages = [s for s in store.stages(job_id) if s.finished_at is not None]
    seconds = {s.name: round((s.finished_at - s.started_at).total_seconds(), 2) for s in stages}
    first = min((s.started_at for s in stages), default=None)
    spawn = None if first is None else round((first - job.created_at).total_seconds(), 2)
    timeline = [
        f"{(e.at - job.created_at).total_seconds():6.2f} s {e.message}"
        for e in store.events(job_id)
    ]
    return seconds, spawn, timeline


def _predictions(task: str, frame: pd.DataFrame, notes: dict[str, Any]) -> Predictions:
    if task == "regression":
        return Predictions(values=frame["prediction"].to_numpy(dtype=float), notes=notes)
    proba = frame[[c for c in frame.columns if c.startswith("proba_")]]
    proba = proba.rename(columns=lambda c: c.removeprefix("proba_"))
    labels = frame["prediction"].astype(str).to_numpy()
    return Predictions(labels=np.asarray(labels), proba=proba, notes=notes)


def served(run: Any) -> Predictions:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        return asyncio.run(_train_and_predict(run, folder))

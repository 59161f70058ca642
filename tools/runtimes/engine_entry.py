"""The AutoML engine's remote entry point: ``python train.py --data INPUT --output OUTPUT``.

This file is shipped as it is (copied as ``train.py`` into an engine job's run folder, beside
``engine.json``) and runs wherever the job runs: on Modal, in a Kaggle kernel, in the local
sandbox for the pre-flight dry run, or in a test's fake provider. It needs the project's code
importable (the remote image gets it as source) and nothing of this machine's state: it reads
the table from INPUT, trains with ``fit_automl`` exactly as a local job does, and writes into
OUTPUT the model folder a local job writes (``model/``: model.skops, meta.json, metrics,
leaderboard, plan, manifest, plots, model card, predict.py) and ``outcome.json`` (the job's
result, with the model file's sha256, which the job checks on arrival).

Progress goes to stdout as lines ``@mltrainer {"message": ..., "progress": ...}``, which the
job turns into its events as the log arrives. ``MLTRAINER_DRY_RUN=1`` asks for the seconds-long
proof: the shortest time budget, on the sample of the data the dry run was given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

EVENT_PREFIX = "@mltrainer "
CONFIG_FILE = "engine.json"
OUTCOME_FILE = "outcome.json"
MODEL_DIR = "model"
DRY_RUN_BUDGET_S = 5


class EngineRun(BaseModel):
    """engine.json: what the entry point trains, written by the job that ships it."""

    job_id: str
    model_id: str = Field(description="The id the model gets here and on this machine.")
    data_file: str = Field(description="The table, relative to the input folder.")
    request: dict[str, Any] = Field(description="The TrainRequest, as the local job has it.")


class EngineOutcome(BaseModel):
    """outcome.json: the train job's result, and the hash of the model file it describes."""

    outcome: dict[str, Any] = Field(description="A TrainOutcome (paths relative to model/).")
    model_sha256: str
    meta: dict[str, Any] = Field(description="The ModelMeta written beside the model.")


class PrintReporter:
    """The engine's Reporter, for a run with no store: events go to stdout, the newest
    published model is kept in memory (only the final one comes back)."""

    def __init__(self) -> None:
        self._checkpoints: dict[str, dict[str, Any]] = {}
        self.started = time.monotonic()

    def event(self, message: str, *, progress: float | None = None, level: str = "info") -> None:
        line = {"message": message, "progress": progress, "level": level}
        print(EVENT_PREFIX + json.dumps(line), flush=True)

    def cancelled(self) -> bool:
        return False  # a remote run is stopped by its provider, not asked

    def checkpoint(self, name: str, data: dict[str, Any]) -> None:
        self._checkpoints[name] = data

    def restore(self, name: str) -> dict[str, Any] | None:
        return self._checkpoints.get(name)

    def publish(self, estimator: Any, model: Any) -> None:
        score = f"{model.score:.4f}" if model.score is not None else "n/a"
        self.event(f"Model {model.name} found: {model.metric} = {score}.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("MLTRAINER_INPUT_DIR"))
    parser.add_argument("--output", default=os.environ.get("MLTRAINER_OUTPUT_DIR"))
    args = parser.parse_args(argv)
    if not args.data or not args.output:
        parser.error("--data and --output (or MLTRAINER_INPUT_DIR / MLTRAINER_OUTPUT_DIR)")
    return args


def train(run: EngineRun, data: Path, output: Path, *, dry_run: bool) -> EngineOutcome:
    """Train as a local job does (tools/training/finish.py ends both the same way)."""
    from mltrainer.state.masking import Masker
    from mltrainer.tools.datasets.cache import sha256_file
    from mltrainer.tools.profiling import read_table
    from mltrainer.tools.profiling.judge import verdict_of
    from mltrainer.tools.profiling.profile import profile
    from mltrainer.tools.training.artifacts import DataSummary
    from mltrainer.tools.training.automl import fit_automl
    from mltrainer.tools.training.finish import final_model, meta_for, outcome_update, write_report
    from mltrainer.tools.training.inputs import describe_inputs
    from mltrainer.tools.training.model import save_model
    from mltrainer.tools.training.outcome import TrainOutcome
    from mltrainer.tools.training.request import TrainRequest

    request = TrainRequest.model_validate(run.request)
    if dry_run:
        request = request.model_copy(update={"time_budget_s": DRY_RUN_BUDGET_S})
    reporter = PrintReporter()
    table = data / run.data_file
    frame = read_table(table)
    reporter.event(f"Loaded {len(frame)} rows × {frame.shape[1]} columns.", progress=0.01)
    found = profile(table, request.target, seed=request.seed)
    result = fit_automl(frame, request, reporter, verdict=verdict_of(found))
    summary = DataSummary(
        path=request.dataset,
        ref=request.dataset_ref,
        rows=len(frame),
        columns=[str(c) for c in frame.columns],
        sha256=sha256_file(table),
    )
    inputs = describe_inputs(frame, [str(c) for c in frame.columns if str(c) != request.target])
    meta = meta_for(
        final_model(result),
        model_id=run.model_id,
        job_id=run.job_id,
        target=request.target,
        inputs=inputs,
    )
    folder = output / MODEL_DIR
    masker = Masker()
    saved = save_model(folder, result.estimator, meta, masker)
    files = write_report(
        folder, result, saved, request, summary, frame, job_id=run.job_id, masker=masker
    )
    outcome = TrainOutcome(
        model_id=run.model_id,
        task=result.task,
        metric=result.metric,
        model_name=result.model_name,
        rows=summary.rows,
        features=result.features,
        data_sha256=summary.sha256,
    ).model_copy(update=outcome_update(result, files, [w.message for w in found.warnings]))
    outcome.artifacts = {file.name: f"{MODEL_DIR}/{file.name}" for file in files}
    reporter.event("Done.", progress=1.0)
    return EngineOutcome(
        outcome=outcome.model_dump(mode="json"),
        model_sha256=saved.file_sha256,
        meta=saved.meta.model_dump(mode="json"),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = EngineRun.model_validate_json(
        (Path(__file__).resolve().parent / CONFIG_FILE).read_text("utf-8")
    )
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    dry_run = os.environ.get("MLTRAINER_DRY_RUN") == "1"
    done = train(run, Path(args.data), output, dry_run=dry_run)
    (output / OUTCOME_FILE).write_text(done.model_dump_json(indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

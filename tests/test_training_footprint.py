"""A table too large for the memory a job may use is sampled while it is read, or refused
before it is loaded with what it would need (issue #17). The limit is MLTRAINER_MAX_MEMORY_GB,
set small, not memory filled up."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import connect, payload, train_until_done

from mltrainer.state.settings import Settings
from mltrainer.tools.profiling import sniff
from mltrainer.tools.training.footprint import (
    FLOOR_BYTES,
    MB,
    estimate,
    frame_bytes_for,
    peak_bytes,
)

ROWS = 30_000


def _table(tmp_path: Path, rows: int = ROWS, suffix: str = ".csv") -> Path:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(10)})
    frame["label"] = np.where(frame["x0"] + rng.normal(scale=0.5, size=rows) > 0, "yes", "no")
    path = tmp_path / f"wide{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def _cap_gb(path: Path, settings: Settings, share: float) -> float:
    """A cap that leaves room for ``share`` of the table's estimated frame."""
    found = estimate(path, sniff(path), settings)
    assert found is not None
    return peak_bytes(found.frame_bytes * share) / 1024**3


@pytest.mark.anyio
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
async def test_a_table_over_the_memory_cap_is_sampled_and_the_decision_recorded(
    home: Path, tmp_path: Path, suffix: str
) -> None:
    path = _table(tmp_path, suffix=suffix)
    cap = _cap_gb(path, Settings(home=home), share=0.5)
    settings = Settings(home=home, max_memory_gb=cap)
    arguments = {"dataset": str(path), "target": "label", "time_budget_s": 8, "plots": False}
    async with connect("memory", settings) as client:
        job = payload(await train_until_done(client, arguments))
        log = await client.read_resource(f"mltrainer://jobs/{job['job_id']}/log")
    assert job["status"] == "succeeded", job
    assert job["model_id"]
    text = log.model_dump_json()
    decided = re.search(r"Sampled ([\d,]+) of (about )?([\d,]+) rows while loading", text)
    assert decided is not None, text
    sampled, estimated = (int(decided.group(i).replace(",", "")) for i in (1, 3))
    assert abs(estimated - ROWS) < 0.1 * ROWS and 0.3 * ROWS < sampled < 0.7 * ROWS
    assert (decided.group(2) is None) == (suffix == ".parquet")  # Parquet's count is exact
    assert "MLTRAINER_MAX_MEMORY_GB" in text and f"Loaded {sampled} rows" in text
    # The reproducibility record says the model saw a sample, and of how many rows.
    manifest = json.loads((settings.models_dir / job["model_id"] / "manifest.json").read_text())
    assert manifest["data"]["rows"] == sampled
    assert manifest["data"]["sampled_from"] == estimated


@pytest.mark.anyio
async def test_a_cap_too_small_for_any_sample_refuses_before_loading(
    home: Path, tmp_path: Path
) -> None:
    path = _table(tmp_path)
    settings = Settings(home=home, max_memory_gb=FLOOR_BYTES / 1024**3 * 0.9)
    arguments = {"dataset": str(path), "target": "label", "time_budget_s": 8, "plots": False}
    async with connect("memory", settings) as client:
        job = payload(await train_until_done(client, arguments))
    assert job["status"] == "failed", job
    error = job["error"]
    assert "too large to train on here" in error and "Nothing was loaded" in error, error
    assert 'runtime="modal"' in error and "memory_gb=" in error, error
    assert job.get("model_id") is None


def test_the_estimate_counts_parquet_rows_exactly_and_csv_rows_closely(tmp_path: Path) -> None:
    rows = 60_000  # a CSV larger than the sniffed head, so its rows are estimated
    csv = _table(tmp_path, rows)
    parquet = tmp_path / "wide.parquet"
    pd.read_csv(csv).to_parquet(parquet, index=False)
    settings = Settings(home=tmp_path / "home")
    from_csv, from_parquet = (estimate(p, sniff(p), settings) for p in (csv, parquet))
    assert from_parquet is not None and from_parquet.rows == rows and from_parquet.rows_exact
    assert from_csv is not None and not from_csv.rows_exact
    assert abs(from_csv.rows - rows) < 0.1 * rows
    frame = pd.read_csv(csv).memory_usage(deep=True, index=False).sum()
    assert abs(from_parquet.frame_bytes - frame) < 0.1 * frame
    assert from_parquet.fits  # the machine's free memory, no cap: 5 MB of data fits


@pytest.mark.parametrize(
    ("frame_mb", "measured_mb"),
    # penguins, glyphs26, mixed_100k, 1m at 60 s; 1m at 300 s, its final fit on 411k rows
    [(0.02, 313), (4.5, 371), (30.2, 670), (302, 801), (302, 1303)],
)
def test_the_peak_model_covers_the_benchmarks_measured_worker_peaks(
    frame_mb: float, measured_mb: float
) -> None:
    """bench/automl's served runs: never under the measured worker peak by more than 5 %,
    and its inverse gives back the frame."""
    estimated = peak_bytes(frame_mb * MB) / MB
    assert estimated >= 0.95 * measured_mb, (estimated, measured_mb)
    assert estimated <= 2 * measured_mb, (estimated, measured_mb)
    assert frame_bytes_for(peak_bytes(frame_mb * MB)) == pytest.approx(frame_mb * MB)


def test_a_sampled_table_is_the_same_sample_each_time_the_job_reads_it(
    home: Path, tmp_path: Path
) -> None:
    """A resumed attempt, and each round of iterate, read the table again: they train on the
    rows the load stage sampled, not on the whole table the memory cap refused."""
    from types import SimpleNamespace

    from mltrainer.state.masking import Masker
    from mltrainer.tools.jobs.train import read_data
    from mltrainer.tools.training.request import TrainRequest

    path = _table(tmp_path, suffix=".parquet")
    settings = Settings(home=home, max_memory_gb=_cap_gb(path, Settings(home=home), share=0.5))
    ctx: Any = SimpleNamespace(settings=settings, store=SimpleNamespace(masker=Masker()))
    request = TrainRequest(dataset=str(path), target="label", seed=7)
    first, plan = read_data(ctx, request)
    again, _ = read_data(ctx, request)
    assert plan.sample_rows is not None and 0.3 * ROWS < len(first) < 0.7 * ROWS
    pd.testing.assert_frame_equal(first.reset_index(drop=True), again.reset_index(drop=True))

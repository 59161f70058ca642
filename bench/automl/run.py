"""Run the AutoML benchmark: every contestant on every dataset, each in its own subprocess.

    python -m bench.automl.run                      # the full suite, budget 60 s
    python -m bench.automl.run --datasets penguins,diabetes --budget 10 --contestants flaml,hgb

Writes ``results.json`` (all records) and ``results.md`` (the tables) into ``--out-dir``
(default: this folder). ``--merge`` keeps earlier records for pairs not run this time.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.automl.contestants import CONTESTANTS
from bench.automl.datasets import DATASETS, SUITE
from bench.automl.memory import PeakSampler
from bench.automl.promise import render_promise
from bench.automl.served import CALL_AFTER_ENV
from bench.automl.table import render

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def _names(text: str, known: dict[str, Any], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def _budgets(pairs: list[str], contestants: list[str]) -> dict[str, int]:
    budgets = {}
    for pair in pairs:
        name, _, seconds = pair.partition("=")
        if name not in contestants or not seconds.isdigit():
            raise SystemExit(
                f"--budget-of {pair!r}: expected NAME=SECONDS for one of {contestants}"
            )
        budgets[name] = int(seconds)
    return budgets


def run_pair(
    dataset: str, contestant: str, budget: int, seed: int, timeout_s: float, log_dir: Path
) -> dict[str, Any]:
    """One contestant on one dataset in a fresh interpreter, killed (whole group) on timeout."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "record.json"
        command = [
            sys.executable, "-m", "bench.automl.run_one", "--dataset", dataset,
            "--contestant", contestant, "--budget", str(budget), "--seed", str(seed),
            "--out", str(out),
        ]  # fmt: skip
        log_path = log_dir / f"{dataset}.{contestant}.log"
        started = time.perf_counter()
        with log_path.open("w") as log:
            process = subprocess.Popen(
                command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            with PeakSampler(process.pid) as sampler:
                try:
                    process.wait(timeout=timeout_s)
                    timed_out = False
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    timed_out = True
        wall_s = round(time.perf_counter() - started, 1)
        if out.exists():
            record = json.loads(out.read_text())
        else:
            status = "timeout" if timed_out else "crashed"
            message = (
                f"killed after {timeout_s:.0f} s"
                if timed_out
                else f"exit code {process.returncode}; see {log_path.name}"
            )
            record = {"dataset": dataset, "contestant": contestant, "status": status,
                      "message": message, "task": DATASETS[dataset].task}  # fmt: skip
    record["wall_s"] = wall_s
    record["load_avg_1m"] = round(os.getloadavg()[0], 2)  # other work on the machine skews times
    record["peak_mb"] = round(max(sampler.peak_mb, record.get("child_peak_mb", 0.0)), 1)
    if contestant == "served":  # the bench process is the MCP client: count server + worker
        record["client_peak_mb"] = record["peak_mb"]
        record["peak_mb"] = round(sampler.descendants_peak_mb, 1)
    record["max_processes"] = sampler.max_processes
    record["at_peak_mb"] = sampler.at_peak
    record["process_peaks_mb"] = sampler.process_peaks
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--datasets", default=",".join(SUITE), help="comma-separated names")
    parser.add_argument("--contestants", default=",".join(CONTESTANTS), help="comma-separated")
    parser.add_argument("--budget", type=int, default=60, help="seconds per AutoML contestant")
    parser.add_argument("--budget-of", action="append", default=[], metavar="NAME=SECONDS",
                        help="one contestant's own budget, e.g. served=15 (repeatable)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=None,
                        help="hard limit per run in seconds (default: 2 × budget + 120)")  # fmt: skip
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--merge", action="store_true", help="keep earlier records not re-run")
    args = parser.parse_args(argv)

    datasets = _names(args.datasets, DATASETS, "dataset")
    contestants = _names(args.contestants, CONTESTANTS, "contestant")
    budgets = {name: args.budget for name in contestants} | _budgets(args.budget_of, contestants)
    timeout_s = args.timeout if args.timeout is not None else 2 * max(budgets.values()) + 120
    args.out_dir.mkdir(parents=True, exist_ok=True)
    log_dir = args.out_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    json_path, md_path = args.out_dir / "results.json", args.out_dir / "results.md"

    records: list[dict[str, Any]] = []
    given = argv if argv is not None else sys.argv[1:]
    waited = os.environ.get(CALL_AFTER_ENV)  # the served contestant's call, after connecting
    call_after = [f"{CALL_AFTER_ENV}={waited}"] if waited else []
    meta: dict[str, Any] = {
        "budget_s": args.budget,
        "budgets_s": budgets,
        "seed": args.seed,
        "cpus": os.cpu_count(),
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join([*call_after, "python", "-m", "bench.automl.run", *given]),
        "datasets": datasets,
        "contestants": contestants,
    }
    if args.merge and json_path.exists():
        earlier = json.loads(json_path.read_text())
        rerun = {(d, c) for d in datasets for c in contestants}
        records = [r for r in earlier["records"] if (r["dataset"], r["contestant"]) not in rerun]
        meta["datasets"] = list(dict.fromkeys([*earlier["meta"]["datasets"], *datasets]))
        meta["contestants"] = list(dict.fromkeys([*earlier["meta"]["contestants"], *contestants]))

    for dataset in datasets:
        for contestant in contestants:
            print(f"{dataset:>16} · {contestant:<8} ", end="", flush=True)
            budget = budgets[contestant]
            record = run_pair(dataset, contestant, budget, args.seed, timeout_s, log_dir)
            records.append(record)
            summary = record.get("scores") or record.get("message", "")
            print(
                f"{record['status']:<8} {record['wall_s']:>6.1f} s {record['peak_mb']:>7.0f} MB {summary}"
            )
            json_path.write_text(json.dumps({"meta": meta, "records": records}, indent=2))
            md_path.write_text(render(meta, records))
            if "served" in meta["contestants"]:
                (args.out_dir / "promise.md").write_text(render_promise(meta, records))
    print(f"\nwrote {md_path} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

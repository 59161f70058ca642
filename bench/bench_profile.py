"""Benchmark: profiling a ~1 GB CSV, against pandas.read_csv(...).describe() as the peer.

    python bench/bench_profile.py [--size-mb 1024] [--no-peer] [--no-plots]

Generates the file once (cached in the temp directory), then runs each contender in a fresh
subprocess and reports its wall time and peak resident memory (VmHWM). Target on a 2-core
machine: profile under 15 s and under 1.5 GB peak.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROWS_PER_CHUNK = 500_000

PROFILE = """
import sys, time
from pathlib import Path
from mltrainer.tools.profiling.profile import profile
started = time.perf_counter()
plots = Path(sys.argv[2]) if sys.argv[2] != "-" else None
result = profile(Path(sys.argv[1]), "churned", plots_dir=plots)
elapsed = time.perf_counter() - started
print(f"rows={result.n_rows} columns={result.n_columns} sampled={result.sampled} "
      f"warnings={sorted({w.kind for w in result.warnings})} task={result.target.task}",
      file=sys.stderr)
"""

PEER = """
import sys
import pandas as pd
frame = pd.read_csv(sys.argv[1])
summary = frame.describe(include="all")
print(f"rows={len(frame)} columns={frame.shape[1]}", file=sys.stderr)
"""

# Runs the snippet, then prints its peak memory as the last line of stdout.
WRAPPER = """
import sys
code = sys.argv.pop(1)
exec(compile(code, "<bench>", "exec"), {"__name__": "__main__"})
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
print(peak * 1024)
"""


def generate(path: Path, size_mb: int) -> Path:
    """A realistic mixed-type CSV of about ``size_mb`` megabytes (seeded, written in chunks)."""
    import numpy as np
    import pyarrow as pa
    from pyarrow import csv

    if path.exists() and abs(path.stat().st_size - size_mb * 2**20) < 0.05 * size_mb * 2**20:
        return path
    rng = np.random.default_rng(0)
    cities = np.array(["Paris", "Lyon", "Nice", "Lille", "Nantes", "Brest", "Metz", "Pau"])
    plans = np.array(["basic", "pro", "team", "enterprise"])
    written, start_id = 0, 0
    tmp = path.with_suffix(".partial")
    with open(tmp, "wb") as out:
        first = True
        while written < size_mb * 2**20:
            n = ROWS_PER_CHUNK
            x = rng.normal(size=n)
            income = np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(10, 0.5, size=n).round(2))
            table = pa.table(
                {
                    "customer_id": np.arange(start_id, start_id + n),
                    "signup": (np.datetime64("2015-01-01") + rng.integers(0, 3000, size=n))
                    .astype("datetime64[D]")
                    .astype(str),
                    "city": cities[rng.integers(0, len(cities), size=n)],
                    "plan": plans[rng.integers(0, len(plans), size=n)],
                    "age": rng.integers(18, 90, size=n),
                    "income": income,
                    "x1": x.round(5),
                    "x2": rng.normal(size=n).round(5),
                    "x3": rng.exponential(size=n).round(5),
                    "visits": rng.poisson(3, size=n),
                    "score": (x * 10 + rng.normal(size=n)).round(3),
                    "churned": np.where(x + rng.normal(size=n) > 1, "yes", "no"),
                }
            )
            sink = pa.BufferOutputStream()
            csv.write_csv(table, sink, write_options=csv.WriteOptions(include_header=first))
            data = sink.getvalue().to_pybytes()
            out.write(data)
            written += len(data)
            start_id += n
            first = False
    tmp.rename(path)
    return path


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(code: str, *args: str) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds, peak resident bytes and the contender's summary line."""
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, code, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"contender failed:\n{done.stderr[-3000:]}")
    peak = int(done.stdout.strip().splitlines()[-1])
    return elapsed, _children_cpu() - cpu, peak, done.stderr.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--no-peer", action="store_true", help="Skip pandas (slow, memory-hungry).")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args()

    cache = Path(tempfile.gettempdir()) / "mltrainer-bench"
    cache.mkdir(exist_ok=True)
    started = time.perf_counter()
    path = generate(cache / f"profile_{args.size_mb}mb.csv", args.size_mb)
    print(
        f"file: {path} ({path.stat().st_size / 2**20:.0f} MB, ready in "
        f"{time.perf_counter() - started:.1f} s)"
    )

    plots = "-" if args.no_plots else str(cache / "plots")
    load = os.getloadavg()
    results = {"mltrainer profile": run(PROFILE, str(path), plots)}
    if not args.no_peer:
        results["pandas read_csv + describe"] = run(PEER, str(path))
    print(f"load average before: {load[0]:.1f} (CPU seconds matter when the machine is busy)")
    print(f"{'contender':28} {'wall s':>7} {'CPU s':>7} {'peak MB':>8}  result")
    for name, (elapsed, cpu, peak, line) in results.items():
        print(f"{name:28} {elapsed:7.1f} {cpu:7.1f} {peak / 2**20:8.0f}  {line}")
    summary = {
        name: {"wall_s": round(v[0], 2), "cpu_s": round(v[1], 2), "peak_mb": round(v[2] / 2**20)}
        for name, v in results.items()
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""Sandbox start-up and warm-session latency, measured side by side in one run.

    python bench/bench_sandbox.py [--runs 20] [--warm 200] [--docker]

Compares run_code("print(1)") on bubblewrap (a fresh sandboxed interpreter per call) with a
bare ``python -c 'print(1)'`` of the same interpreter, interleaved so both see the same
machine load, and times calls in a warm session. Targets (issue 3): bwrap within 2x of bare
python; warm-session median under 20 ms.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mltrainer.sandbox.manager import SandboxManager
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bare_python() -> None:
    subprocess.run([sys.executable, "-c", "print(1)"], check=True, capture_output=True)


def row(name: str, samples: list[float], baseline: float | None = None) -> str:
    median = statistics.median(samples)
    ratio = f"{median / baseline:5.2f}x" if baseline else "    -"
    return (
        f"{name:<34} {median * 1000:9.1f} {min(samples) * 1000:9.1f} "
        f"{statistics.quantiles(samples, n=10)[-1] * 1000:9.1f} {ratio}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warm", type=int, default=200)
    parser.add_argument("--docker", action="store_true", help="also time the Docker backend")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="mltrainer-bench-"))
    settings = Settings(home=home, sandbox="bwrap")
    settings.ensure_dirs()
    store = Store(settings.db_path)  # as in the server: every call is recorded as a run
    bwrap = SandboxManager(settings, store=store)
    if bwrap.choice.backend is None:
        sys.exit(f"bubblewrap unavailable: {bwrap.choice.reason}")

    def sandboxed() -> None:
        result, _ = bwrap.run("print(1)")
        assert result.stdout == "1\n", result

    for warmup in (bare_python, sandboxed):
        warmup()
    bare, boxed = [], []
    for _ in range(args.runs):  # interleaved: both see the same load
        bare.append(timed(bare_python))
        boxed.append(timed(sandboxed))
    bwrap.run("x = 0", session="bench")
    warm = [timed(lambda: bwrap.run("x += 1", session="bench")) for _ in range(args.warm)]
    rows = [
        row("bare python -c 'print(1)'", bare),
        row("run_code('print(1)') on bwrap", boxed, statistics.median(bare)),
        row("run_code in a warm bwrap session", warm),
    ]
    bwrap.close()
    if args.docker:
        docker = SandboxManager(Settings(home=home, sandbox="docker"))
        if docker.choice.backend is not None:
            docker.run("print(1)")
            runs = [timed(lambda: docker.run("print(1)")) for _ in range(max(args.runs // 4, 3))]
            rows.append(row("run_code('print(1)') on docker", runs, statistics.median(bare)))
            docker.run("x = 0", session="bench")
            dwarm = [timed(lambda: docker.run("x += 1", session="bench")) for _ in range(args.warm)]
            rows.append(row("run_code in a warm docker session", dwarm))
        else:
            rows.append(f"docker: unavailable ({docker.choice.reason})")
        docker.close()
    print(f"{'':<34} {'median ms':>9} {'min ms':>9} {'p90 ms':>9} {'vs bare':>6}")
    print("\n".join(rows))
    ratio = statistics.median(boxed) / statistics.median(bare)
    print(
        f"\nbwrap/bare = {ratio:.2f} (target <= 2.0); warm median = "
        f"{statistics.median(warm) * 1000:.1f} ms (target < 20)"
    )


if __name__ == "__main__":
    main()

"""Start-up of ``mltrainer-mcp`` against a trivial MCPServer, measured side by side in one run.

    python bench/bench_startup.py [--rounds 30]

Each round starts both servers over stdio with the real SDK client, alternating which goes
first so both see the same machine load, and times spawn → initialize → tools listed. Prints
the medians and their ratio (target, issue 10: at most 1.2x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

# The smallest useful server: one tool, nothing else.
TRIVIAL = """
from mcp.server import MCPServer

mcp = MCPServer("trivial")


@mcp.tool()
def echo(text: str) -> str:
    \"\"\"Echo the text.\"\"\"
    return text


mcp.run("stdio")
"""


def ours(home: Path) -> StdioServerParameters:
    script = Path(sys.executable).with_name("mltrainer-mcp")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "mltrainer.server.cli"]
    return StdioServerParameters(
        command=command[0],
        args=command[1:] if len(command) > 1 else [],
        env={**os.environ, "MLTRAINER_HOME": str(home)},
        cwd=str(home),
    )


def trivial(home: Path) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-c", TRIVIAL], cwd=str(home))


async def time_startup(params: StdioServerParameters) -> tuple[float, int]:
    start = time.perf_counter()
    async with Client(params) as client:
        tools = (await client.list_tools()).tools
        elapsed = time.perf_counter() - start
    return elapsed, len(tools)


def line(name: str, samples: list[float], baseline: float | None = None) -> str:
    median = statistics.median(samples)
    ratio = f"{median / baseline:5.2f}x" if baseline else "    -"
    return (
        f"{name:<32} {median * 1000:9.1f} {min(samples) * 1000:9.1f} "
        f"{max(samples) * 1000:9.1f} {ratio}"
    )


async def run(rounds: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="mltrainer-bench-startup-"))
    servers = {"trivial MCPServer": trivial(home), "mltrainer-mcp": ours(home)}
    counts = {}
    for name, params in servers.items():  # warm-up: page cache, byte code, the database
        counts[name] = (await time_startup(params))[1]
    samples: dict[str, list[float]] = {name: [] for name in servers}
    order = list(servers)
    for _ in range(rounds):
        for name in order:
            samples[name].append((await time_startup(servers[name]))[0])
        order.reverse()  # alternate who goes first
    base = statistics.median(samples["trivial MCPServer"])
    print(f"{rounds} alternating rounds; start → initialize → tools listed (ms)")
    print(f"{'server':<32} {'median':>9} {'min':>9} {'max':>9} ratio")
    for name in servers:
        label = f"{name} ({counts[name]} tools)"
        print(line(label, samples[name], base if name != "trivial MCPServer" else None))
    ratio = statistics.median(samples["mltrainer-mcp"]) / base
    print(f"ratio of medians: {ratio:.2f}x (target ≤ 1.20x); load {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    anyio.run(run, args.rounds)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# What `uvx mltrainer-mcp` and `pipx run mltrainer-mcp` do, from the wheel this checkout builds:
# build it, install it into a clean virtual environment (no editable install, no checkout on
# the path), start `mltrainer-mcp` from there with a real MCP client, initialize, list the
# tools, call one and read a view. (uv is not installed here; a clean venv with pip is the
# same check.) Fails the build on any failure. Leaves the wheel in $WHEEL_DIR.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
WHEEL_DIR="${WHEEL_DIR:-$WORK/dist}"
trap 'rm -rf "$WORK/venv" "$WORK/home" "$WORK/run"' EXIT
say() { echo "[wheel-check] $*"; }

say "building the wheel"
python3 -m pip wheel -q --no-deps -w "$WHEEL_DIR" "$REPO" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
WHEEL="$(ls "$WHEEL_DIR"/mltrainer_mcp-*.whl)"
say "built $(basename "$WHEEL")"
python3 - "$WHEEL" <<'PY'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
parts = ["mltrainer/server/ui/dashboard.html", "mltrainer/server/ui/profile.html",
         "mltrainer/server/ui/common.js", "mltrainer/server/ui/common.css",
         "mltrainer/server/cli/__main__.py", "mltrainer/sandbox/docker/Dockerfile"]
missing = [p for p in parts if p not in names]
assert not missing, f"the wheel lacks {missing}"
assert not [n for n in names if n.split("/")[0] in ("server", "tools", "state", "sandbox", "tests")]
PY

say "installing it into a clean virtual environment"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q "$WHEEL" >"$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log"; exit 1; }

mkdir -p "$WORK/run"
cat >"$WORK/run/check.py" <<'PY'
"""Start the installed mltrainer-mcp over stdio like an MCP client and use it."""
import os
import sys

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.extension import advertise

APPS = advertise("io.modelcontextprotocol/ui", {"mimeTypes": ["text/html;profile=mcp-app"]})


async def main() -> None:
    server = os.path.join(sys.prefix, "bin", "mltrainer-mcp")
    params = StdioServerParameters(command=server, env={"MLTRAINER_HOME": sys.argv[1]}, cwd=os.getcwd())
    async with Client(params, extensions=[APPS]) as client:
        tools = [tool.name for tool in (await client.list_tools()).tools]
        assert {"train_model", "job_status", "predict", "profile_dataset"} <= set(tools), tools
        jobs = await client.call_tool("list_jobs", {})
        assert not jobs.is_error and jobs.structured_content["count"] == 0, jobs
        view = await client.read_resource("ui://mltrainer/job-dashboard.html")
        assert view.contents[0].text.startswith("<!DOCTYPE html>")
    print(f"mltrainer-mcp from the wheel: {len(tools)} tools, list_jobs answered, views served")


anyio.run(main)
PY
cd "$WORK/run"
# -P and a folder of its own: nothing from the checkout can stand in for the installed package.
"$WORK/venv/bin/python" -P -c "import mltrainer.server, sys; assert '$REPO' not in mltrainer.server.__path__[0], mltrainer.server.__path__"
"$WORK/venv/bin/python" -P check.py "$WORK/home"
"$WORK/venv/bin/mltrainer" --help >/dev/null
say "ok"

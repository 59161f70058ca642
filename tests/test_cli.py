"""The CLI for people, driven as a subprocess: train → status → predict on the demo data through
the same MCP server an assistant uses, --json for scripts, exit codes that mean something, clear
messages for bad input, and ``mltrainer doctor``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from deploy_fixtures import CANARY
from fakes.hf import FakeHub

from mltrainer.server.cli.demo import write_demo_data

pytest_plugins = ["deploy_fixtures"]


def mltrainer(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``mltrainer ARGS`` from this interpreter, in the test's folder and state directory."""
    return subprocess.run(
        [sys.executable, "-P", "-m", "mltrainer.server.cli", *args],
        env={**os.environ, "FORCE_COLOR": "1", "COLUMNS": "120", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def plain(text: str) -> str:
    """Without the colours FORCE_COLOR asks for (they prove the bar is drawn as on a terminal)."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def as_json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.stdout.lstrip().startswith("{"), done.stdout + done.stderr
    return dict(json.loads(done.stdout))


# The long tier: 47 s on a slow machine; the MCP train -> predict round trip stays quick
# (test_train_predict.py).
@pytest.mark.slow
def test_train_status_predict_on_the_demo_data(home: Path, tmp_path: Path) -> None:
    train, new = write_demo_data(tmp_path / "demo")
    done = mltrainer("train", str(train), "--target", "target", "--budget", "15")
    assert done.returncode == 0, done.stderr
    out = plain(done.stdout)
    assert "━" in out and "100%" in out  # the progress bar, drawn to the end
    assert "succeeded" in out and "Held-out test metrics" in out and "Leaderboard" in out
    job_id = re.search(r"Job (job_[0-9a-f]{12}) started", out)
    assert job_id, out

    status = as_json(mltrainer("status", job_id.group(1), "--json"))
    assert status["status"] == "succeeded" and status["result"]["holdout"]["roc_auc"] > 0.9
    model_id = status["model_id"]
    assert f"mltrainer predict {model_id} DATA" in out

    predicted = mltrainer("predict", model_id, str(new), "--json")
    assert predicted.returncode == 0 and predicted.stderr == ""
    result = as_json(predicted)
    assert result["n_rows"] == 10 and Path(result["predictions_path"]).is_file()
    table = mltrainer("predict", job_id.group(1), str(new))  # a job_id means its best model
    assert table.returncode == 0 and "Predictions for 10 rows" in plain(table.stdout)

    listed = as_json(mltrainer("jobs", "--json", "--kind", "train"))
    assert [job["job_id"] for job in listed["jobs"]] == [job_id.group(1)]
    assert "Job" not in mltrainer("jobs", "--json").stdout.split("{", 1)[0]  # JSON only


def test_a_job_cancelled_from_the_cli_exits_1_when_followed(home: Path, tmp_path: Path) -> None:
    train, _ = write_demo_data(tmp_path / "demo")
    started = mltrainer(
        "train", str(train), "--target", "target", "--budget", "300", "--no-wait", "--json"
    )
    assert started.returncode == 0, started.stderr
    job_id = as_json(started)["job_id"]
    cancelled = mltrainer("cancel", job_id, "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    followed = mltrainer("status", job_id, "--wait", "--json")
    assert as_json(followed)["status"] == "cancelled" and followed.returncode == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "{data}", "--target", "nope"], "Column 'nope' (given as target) is not in"),
        (["train", "{missing}", "--target", "target"], "missing.csv"),
        (["train", "/etc/passwd", "--target", "x"], "outside the folders tools may read"),
        (["status", "job_000000000000"], "No job with id 'job_000000000000'"),
        (["predict", "model_000000000000", "{data}"], "No model with id"),
        (["cancel", "job_000000000000", "--json"], "No job with id"),
        (["train", "{data}"], "the following arguments are required: --target"),
        (["train", "{data}", "--target", "target", "--budget", "1"], "time_budget_s"),
    ],
    ids=[
        "unknown column",
        "missing file",
        "outside",
        "unknown job",
        "unknown model",
        "cancel unknown",
        "no target",
        "budget too small",
    ],
)
def test_bad_input_is_a_clear_message_and_exit_2(
    home: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    train, _ = write_demo_data(tmp_path / "demo")
    names = {"data": str(train), "missing": str(tmp_path / "missing.csv")}
    done = mltrainer(*(arg.format(**names) for arg in args))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_a_server_that_cannot_start_is_exit_3_with_its_reason(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mltrainer.server.cli.client import EXIT_UNAVAILABLE, CliError, connect, run

    monkeypatch.setattr(sys, "executable", str(home / "no-such-python"))

    async def command() -> int:
        async with connect() as server:
            await server.call("list_jobs", {})
        return 0

    with pytest.raises(CliError) as raised:
        import anyio

        anyio.run(command)
    assert raised.value.code == EXIT_UNAVAILABLE and "mltrainer doctor" in str(raised.value)
    assert run(command) == EXIT_UNAVAILABLE


def user_home(tmp_path: Path, config: dict[str, Any] | None) -> dict[str, str]:
    """An environment whose user has only the given Claude Desktop configuration."""
    user = tmp_path / "user"
    if config is not None:
        path = user / ".config" / "Claude" / "claude_desktop_config.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(config))
    return {"HOME": str(user), "XDG_CONFIG_HOME": str(user / ".config"), "APPDATA": ""}


def checks(done: subprocess.CompletedProcess[str]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["area"], c["name"]): c for c in as_json(done)["checks"]}


def test_doctor_reports_each_check_with_how_to_fix_it(home: Path, tmp_path: Path) -> None:
    this = str(Path(sys.prefix) / "bin" / "mltrainer-mcp")
    ours = {"mcpServers": {"mltrainer": {"command": this, "args": []}}}
    done = mltrainer("doctor", "--json", "--offline", env=user_home(tmp_path, ours))
    found = checks(done)
    assert found[("python", "mcp")]["level"] == "ok"
    assert found[("sandbox", "backend")]["detail"]
    assert found[("state", "directory")]["level"] == "ok"
    assert found[("state", "free disk")]["detail"].endswith("GiB free")
    assert found[("clients", "Claude Desktop")]["level"] == "ok"
    assert found[("credentials", "HF_TOKEN")]["fix"] == "mltrainer secrets set HF_TOKEN"
    assert done.returncode == 0, done.stdout

    home.chmod(0o755)
    other = {"mcpServers": {"ml": {"command": "/opt/elsewhere/bin/mltrainer-mcp"}}}
    found = checks(mltrainer("doctor", "--json", "--offline", env=user_home(tmp_path / "b", other)))
    assert found[("state", "directory")]["level"] == "warning"
    assert found[("state", "directory")]["fix"].startswith("chmod 700")
    client = found[("clients", "Claude Desktop")]
    assert client["level"] == "warning" and "another install" in client["detail"]
    assert this in client["fix"]
    nothing = checks(
        mltrainer("doctor", "--json", "--offline", env=user_home(tmp_path / "c", None))
    )
    assert nothing[("clients", "MCP clients")]["fix"].startswith("Add a server")


def test_doctor_checks_a_credential_with_its_service_and_never_shows_it(
    home: Path, tmp_path: Path, hub: FakeHub
) -> None:
    env = {**user_home(tmp_path, None), "HF_TOKEN": CANARY, "MLTRAINER_HF_ENDPOINT": hub.url}
    done = mltrainer("doctor", "--json", env=env)
    token = checks(done)[("credentials", "HF_TOKEN")]
    assert token["level"] == "ok" and "fakeuser" in token["detail"], token
    assert CANARY not in done.stdout + done.stderr

    wrong = "hf_NotKnown00000000000000000000"
    done = mltrainer("doctor", "--json", env={**env, "HF_TOKEN": wrong})
    token = checks(done)[("credentials", "HF_TOKEN")]
    assert token["level"] == "problem" and token["fix"] == "mltrainer secrets set HF_TOKEN"
    assert done.returncode == 1 and wrong not in done.stdout + done.stderr
    human = mltrainer("doctor", env={**env, "HF_TOKEN": wrong})
    assert "1 problem(s)" in plain(human.stdout) and human.returncode == 1

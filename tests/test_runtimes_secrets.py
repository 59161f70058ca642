"""Credentials and the runs' secrets: a canary reaches the fake Modal only as the credential
(secret://MODAL) and as the run's secret payload (when named), and appears nowhere on this
side: not in tool results, events, the database, the job's files or its artifacts. And the
local runtime runs a script in the sandbox with the same contract, no secret ever in it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from canary import Canary
from conftest import connect, error_text, payload
from fakes.modal import enable, fast_settings

from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings

LEAKY = """
import json, os
from pathlib import Path
out = Path(os.environ["MLTRAINER_OUTPUT_DIR"])
key = os.environ.get("RUN_KEY", "")
print("the key is", key, flush=True)
(out / "leak.txt").write_text(f"key={key}\\n")
(out / "summary.json").write_text(json.dumps({"key_length": len(key)}))
"""
GOOD = """
import json, os
from pathlib import Path
import pandas as pd
data, out = Path(os.environ["MLTRAINER_INPUT_DIR"]), Path(os.environ["MLTRAINER_OUTPUT_DIR"])
frame = pd.read_csv(data / "churn.csv")
(out / "summary.json").write_text(json.dumps({"rows": len(frame), "dry": os.environ.get("MLTRAINER_DRY_RUN")}))
"""


async def until_done(client: Any, job: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while job["status"] not in ("succeeded", "failed", "cancelled") and time.monotonic() < deadline:
        job = payload(await client.call_tool("job_status", {"job_id": job["job_id"], "wait_s": 5}))
    return job


def texts(result: Any) -> list[str]:
    found = [json.dumps(result.structured_content)] if result.structured_content else []
    return found + [getattr(c, "text", "") for c in result.content]


@pytest.mark.anyio
async def test_a_secret_canary_reaches_modal_only_as_the_credential_and_the_runs_secret(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = enable(tmp_path / "modal-cloud", monkeypatch)
    token = Canary.make("MODAL_TOKEN_SECRET", prefix="as-")
    monkeypatch.setenv(token.name, token.value)
    settings = fast_settings(home)
    settings.ensure_dirs()
    run_key = Canary.make("RUN_KEY")
    SecretVault.for_settings(settings).set(run_key.name, run_key.value, hosts=["api.modal.com"])
    outputs: list[str] = []
    async with connect("memory", settings) as client:
        started = await client.call_tool(
            "submit_training",
            {
                "script": LEAKY,
                "runtime": "modal",
                "secrets": ["secret://RUN_KEY"],
                "outputs": ["leak.txt", "summary.json"],
            },
        )
        outputs += texts(started)
        job = await until_done(client, payload(started))
        final = await client.call_tool("job_status", {"job_id": job["job_id"]})
        outputs += texts(final)
        log = await client.read_resource(f"mltrainer://jobs/{job['job_id']}/log")
        outputs += [c.text for c in log.contents if hasattr(c, "text")]
    assert job["status"] == "succeeded", job["error"]
    summary = json.loads(Path(job["result"]["outputs"]["summary.json"]).read_text())
    assert summary["key_length"] == len(run_key.value)  # the run had its secret
    assert any("the key is" in text for text in outputs)  # its log came back, masked

    for canary in (token, run_key):
        canary.assert_absent(home, *outputs)  # results, events, database, job files, artifacts
    spawn = fake.calls("spawn")[0]
    assert spawn["secret_env"] == {"RUN_KEY": run_key.value}  # the Modal secret's payload
    assert all(call["credentials"]["MODAL_TOKEN_SECRET"] == token.value for call in fake.calls())
    for call in fake.calls():
        rest = json.dumps({k: v for k, v in call.items() if k not in ("credentials", "secret_env")})
        token.assert_absent(None, rest)
        run_key.assert_absent(None, rest)
    for shipped in (fake.root / "volumes").glob("*/run"):  # what was uploaded
        for path in shipped.rglob("*"):
            if path.is_file():
                token.assert_absent(None, path.read_bytes())
                run_key.assert_absent(None, path.read_bytes())


@pytest.mark.anyio
async def test_the_local_runtime_runs_a_script_in_the_sandbox_with_the_same_contract(
    settings: Settings, churn_csv: Path
) -> None:
    async with connect("memory", settings) as client:
        job = payload(
            await client.call_tool(
                "submit_training",
                {"script": GOOD, "dataset": str(churn_csv), "outputs": ["summary.json"]},
            )
        )
        assert job["kind"] == "script" and job["runtime"] == "local"
        assert job["preflight"]["estimate"]["usd"] == 0 and job["preflight"]["estimate"]["free"]
        job = await until_done(client, job)
        assert job["status"] == "succeeded", job["error"]
        summary = json.loads(Path(job["result"]["outputs"]["summary.json"]).read_text())
        assert summary == {"rows": 400, "dry": None}  # the whole data, not the dry run's sample
        for bad, pattern in (
            ({"gpu": "T4"}, "runtime='local' runs in this machine's sandbox, without a GPU"),
            ({"secrets": ["secret://HF_TOKEN"]}, "the local sandbox never sees credentials"),
        ):
            result = await client.call_tool(
                "submit_training", {"script": GOOD, "dataset": str(churn_csv), **bad}
            )
            assert pattern in error_text(result)

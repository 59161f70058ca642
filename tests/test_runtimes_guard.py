"""The pre-flight guard, through a real MCP client: every refusal is a clear tool error before
anything reaches the provider (the fake Modal saw no upload and no spawn), and the server
keeps serving; dry_run=True returns the guard's report with a dated cost estimate."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import connect, error_text, payload
from fakes.modal import FakeModal, fast_settings

from mltrainer.state.settings import Settings

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command

GOOD = """
import json, os
from pathlib import Path
import pandas as pd
data, out = Path(os.environ["MLTRAINER_INPUT_DIR"]), Path(os.environ["MLTRAINER_OUTPUT_DIR"])
frame = pd.read_csv(data / "churn.csv")
(out / "summary.json").write_text(json.dumps({"rows": len(frame), "mean": frame["x1"].mean()}))
"""
SYNTAX_ERROR = "import os\ndef broken(:\n    pass\n"
MISSING_COLUMN = GOOD.replace('frame["x1"]', 'frame["no_such_column"]')
WRITES_NOTHING = GOOD.replace("(out / ", "print(").replace(".write_text(", ", (")
MISSING_IMPORT = "import not_a_module_anywhere_xyz\n" + GOOD

pytest_plugins = ["modal_fixtures"]


def nothing_sent(fake: FakeModal) -> None:
    assert fake.calls("upload") == [] and fake.calls("spawn") == [], fake.calls()


async def refused(client: Any, tool: str, arguments: dict[str, Any], pattern: str) -> str:
    result = await client.call_tool(tool, arguments)
    text = error_text(result)
    assert re.search(pattern, text, re.S), text
    return text


@pytest.mark.anyio
async def test_each_bad_spec_is_refused_before_anything_reaches_modal(
    modal_settings: Settings, fake_modal: FakeModal, churn_csv: Path
) -> None:
    base = {"script": GOOD, "runtime": "modal", "dataset": str(churn_csv)}
    async with connect("memory", modal_settings) as client:
        await refused(
            client, "submit_training", {**base, "gpu": "K80"}, r"gpu: Modal has no GPU 'K80'.*T4"
        )
        await refused(
            client,
            "submit_training",
            {**base, "timeout_s": 90_000},
            r"timeout_s=90000 is over modal's limit of 86400 seconds \(catalogue of 2026",
        )
        await refused(
            client,
            "submit_training",
            {**base, "gpu": "H100", "timeout_s": 86_400, "max_cost_usd": 1},
            r"Refused before anything was sent to modal or paid for — cost: at most \$103\.\d\d .*H100.*prices of 2026-07-01\) against a cap of \$1\.00 \(max_cost_usd\)",
        )
        await refused(
            client,
            "train_model",
            {"dataset": str(churn_csv), "target": "label", "runtime": "modal", "parallel": 500},
            r"parallel=500: Modal runs at most 100 containers",
        )
        await refused(
            client,
            "train_model",
            {
                "dataset": str(churn_csv),
                "target": "label",
                "runtime": "modal",
                "gpu": "T4",
                "parallel": 20,
            },
            r"parallel=20: Modal runs at most 10 GPU containers",
        )
        await refused(
            client,
            "train_model",
            {"dataset": str(churn_csv), "target": "label", "gpu": "T4"},
            r"runtime='local'.*gpu= needs a remote runtime",
        )
        bad_runtime = await client.call_tool("submit_training", {**base, "runtime": "gcp"})
        assert bad_runtime.is_error and "'local', 'modal' or 'kaggle'" in error_text(bad_runtime)
        # The server still serves.
        listed = payload(await client.call_tool("list_jobs", {}))
        assert listed["count"] == 0
    nothing_sent(fake_modal)


@pytest.mark.anyio
async def test_a_script_that_would_fail_remotely_fails_its_dry_run_here(
    modal_settings: Settings, fake_modal: FakeModal, churn_csv: Path
) -> None:
    base = {"runtime": "modal", "dataset": str(churn_csv), "outputs": ["summary.json"]}
    async with connect("memory", modal_settings) as client:
        await refused(
            client,
            "submit_training",
            {**base, "script": SYNTAX_ERROR},
            r"syntax: train.py line 2: invalid syntax",
        )
        await refused(
            client,
            "submit_training",
            {**base, "script": MISSING_COLUMN},
            r"dry run: .*failed: KeyError: 'no_such_column'",
        )
        await refused(
            client,
            "submit_training",
            {**base, "script": WRITES_NOTHING, "outputs": []},
            r"dry run: .*wrote nothing into MLTRAINER_OUTPUT_DIR",
        )
        await refused(
            client,
            "submit_training",
            {**base, "script": GOOD, "outputs": ["model.pt"]},
            r"dry run: .*did not write model.pt into MLTRAINER_OUTPUT_DIR",
        )
        await refused(
            client,
            "submit_training",
            {**base, "script": MISSING_IMPORT, "requirements": ["pandas"]},
            r"ModuleNotFoundError: No module named 'not_a_module_anywhere_xyz'.*install the missing one here",
        )
    nothing_sent(fake_modal)


@pytest.mark.anyio
async def test_dry_run_returns_the_guard_report_with_a_dated_estimate_and_sends_nothing(
    modal_settings: Settings, fake_modal: FakeModal, churn_csv: Path
) -> None:
    async with connect("memory", modal_settings) as client:
        job = payload(
            await client.call_tool(
                "submit_training",
                {
                    "script": GOOD,
                    "runtime": "modal",
                    "dataset": str(churn_csv),
                    "gpu": "L4",
                    "timeout_s": 1800,
                    "outputs": ["summary.json"],
                    "dry_run": True,
                },
            )
        )
        report = job["preflight"]
        assert job["dry_run"] and job["status"] == "succeeded" and "dry run" in job["next_step"]
        assert report["ok"] and report["mode"] == "dry_run"
        assert [c["name"] for c in report["checks"]] == [
            "spec",
            "data size",
            "cost",
            "syntax",
            "dry run",
        ]
        # An L4 ($0.80/h) + 4 cores + 16 GiB for 30 min + 10 min of start-up: $0.74 at most.
        assert report["estimate"]["usd"] == pytest.approx(0.744, abs=0.001)
        assert "1 × L4 $0.80/h" in report["estimate"]["basis"]
        assert report["estimate"]["prices_as_of"] == "2026-07-01"
        assert report["cap_usd"] == 5.0 and report["cap_from"] == "MLTRAINER_MAX_COST_USD"
        assert report["dry_run"]["written"] == ["summary.json"]
        assert report["dry_run"]["sample"]["tables"] == ["churn.csv"]
        again = payload(await client.call_tool("job_status", {"job_id": job["job_id"]}))
        assert again["preflight"] == report
    nothing_sent(fake_modal)


@pytest.mark.anyio
async def test_a_runtime_without_credentials_names_the_secret_and_how_to_set_it(
    settings: Settings, churn_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.delenv("MODAL_TOKEN_SECRET", raising=False)
    async with connect("memory", settings) as client:
        result = await client.call_tool(
            "train_model", {"dataset": str(churn_csv), "target": "label", "runtime": "modal"}
        )
        text = error_text(result)
        assert "secret://MODAL is not set" in text
        assert "MODAL_TOKEN_ID + MODAL_TOKEN_SECRET" in text and "set_secret" in text


@pytest.mark.anyio
async def test_data_too_large_to_ship_and_a_secret_not_bound_to_modal_are_refused(
    home: Path, fake_modal: FakeModal, churn_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = fast_settings(home, remote_max_upload_gb=1e-6)  # about 1 kB
    base = {"script": GOOD, "runtime": "modal", "dataset": str(churn_csv)}
    async with connect("memory", settings) as client:
        await refused(
            client,
            "submit_training",
            base,
            r"data size: \d\.\d+e-05 GB of data to ship, more than the 1e-06 GB allowed",
        )
        await refused(
            client,
            "submit_training",
            {**base, "secrets": ["secret://HF_TOKEN"]},
            r"secrets: secret://HF_TOKEN may be sent to huggingface.co only",
        )
        await refused(
            client,
            "submit_training",
            {**base, "secrets": ["secret://NOT_DECLARED"]},
            r"secret://NOT_DECLARED is not a declared secret",
        )
    nothing_sent(fake_modal)

"""What a training job does after its model, through a real MCP client: the held-out rows and
the model card are written with the model (analyze_model and deploy_model need nothing else),
iterate=N acts on the error analysis and records every round, and deploy_to deploys once the
job has succeeded (against the fake Hub), its refusals coming before anything trains."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import connect, error_text, payload, train_until_done
from deploy_fixtures import CANARY
from fakes.hf import FakeHub
from fakes.hub_write import FakeToken
from test_analysis import planted_frame

from mltrainer.state.settings import Settings

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command

pytest_plugins = ["deploy_fixtures"]
REPO = "fakeuser/planted"


def planted_csv(folder: Path, rows: int = 2000) -> Path:
    path = folder / "planted.csv"
    planted_frame(rows=rows).to_csv(path, index=False)
    return path


async def train(client: Any, dataset: Path, **arguments: Any) -> dict[str, Any]:
    base = {"dataset": str(dataset), "target": "label", "time_budget_s": 5, "plots": False}
    return payload(await train_until_done(client, base | arguments))


@pytest.mark.anyio
async def test_a_finished_job_keeps_its_held_out_rows_and_the_card_deploy_uploads(
    settings: Settings, tmp_path: Path
) -> None:
    from huggingface_hub import ModelCard

    async with connect("memory", settings) as client:
        job = await train(client, planted_csv(tmp_path), exclude_columns=["batch"])
        assert job["status"] == "succeeded", job
        analysis = payload(await client.call_tool("analyze_model", {"model": job["job_id"]}))
        assert analysis["source"] == "holdout" and analysis["rows"] > 100
        assert analysis["slices"][0]["description"] == "colour = 'e'"

        card = await client.read_resource(f"mltrainer://models/{job['model_id']}/card")
        text = card.contents[0].text
    folder = settings.models_dir / job["model_id"]
    assert (folder / "README.md").read_text() == text
    metrics = json.loads((folder / "metrics.json").read_text())
    data = ModelCard(text).data
    assert {r.metric_type: r.metric_value for r in data.eval_results} == metrics["holdout"]
    assert str(tmp_path / "planted.csv") not in text  # a local path is named, not spelled out


@pytest.mark.anyio
async def test_iterate_acts_on_the_analysis_and_keeps_a_round_only_when_it_scores_better(
    settings: Settings, tmp_path: Path
) -> None:
    async with connect("memory", settings) as client:
        job = await train(client, planted_csv(tmp_path), iterate=2, models=["linear"])
        assert job["status"] == "succeeded", job
        result = job["result"]
        rounds = result["rounds"]
        assert 1 <= len(rounds) <= 2
        iterate = [d for d in result["decisions"] if d["stage"] == "iterate"]
        assert len(iterate) == len(rounds)
        for entry, decision in zip(rounds, iterate, strict=True):
            assert decision["reason"] == entry["why"]
        acted = [r for r in rounds if r["changes"]]
        # Only linear models were allowed: the analysis suggests other families, and acts.
        assert acted and any("models=" in change for change in acted[0]["changes"])
        for entry in acted:
            assert entry["model_id"] and entry["score"] is not None
            assert entry["why"].startswith("kept" if entry["kept"] else "not kept")
        kept = [r for r in acted if r["kept"]]
        assert job["model_id"] == (kept[-1]["model_id"] if kept else result["model_id"])
        if not kept:
            assert all(r["model_id"] != job["model_id"] for r in acted)
        # predict uses the job's model, whichever round it came from
        predicted = payload(
            await client.call_tool(
                "predict", {"model": job["job_id"], "dataset": str(tmp_path / "planted.csv")}
            )
        )
        assert predicted["model_id"] == job["model_id"]

        refused = await client.call_tool(
            "train_model",
            {"dataset": str(tmp_path / "planted.csv"), "target": "label", "iterate": 9},
        )
        assert refused.is_error and "iterate" in error_text(refused)


@pytest.mark.anyio
async def test_deploy_to_deploys_after_success_and_refuses_a_bad_repo_before_training(
    home: Path, tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", CANARY)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")  # the worker too uploads over HTTP LFS
    settings = Settings(home=home, hf_endpoint=hub.url)
    data = planted_csv(tmp_path, rows=600)
    async with connect("memory", settings) as client:
        bad = await client.call_tool(
            "train_model", {"dataset": str(data), "target": "label", "deploy_to": "no-namespace"}
        )
        assert bad.is_error and "namespace/name" in error_text(bad)
        lonely = await client.call_tool(
            "train_model", {"dataset": str(data), "target": "label", "deploy_space": True}
        )
        assert lonely.is_error and "deploy_to" in error_text(lonely)
        assert payload(await client.call_tool("list_jobs", {}))["count"] == 0  # nothing started

        job = await train(client, data, deploy_to=REPO, deploy_space=True)
        assert job["status"] == "succeeded", job["error"]
        deployment = job["result"]["deployment"]
        assert deployment["repo_url"] == f"{hub.url}/{REPO}"
        assert deployment["space_url"] == f"{hub.url}/spaces/{REPO}-demo"
        commits = hub.writer.commits(REPO)
        assert len(commits) == 2  # the repository's first commit, then the model's one

        hub.writer.tokens[CANARY] = FakeToken("fakeuser", role="read")
        failed = await train(client, data, deploy_to=REPO)
        assert failed["status"] == "failed"
        assert failed["model_id"] and "read-only" in failed["error"]
        assert f"deploy_model(model='{failed['model_id']}'" in failed["error"]
        assert CANARY not in json.dumps([job, failed])


@pytest.mark.anyio
async def test_a_job_logs_itself_to_mlflow_in_its_own_stage(home: Path, tmp_path: Path) -> None:
    """A job with tracking on ends with its run in the store (tracking is an optional extra)."""
    from test_tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings = Settings(home=home, mlflow_tracking_uri=uri)
    async with connect("memory", settings) as client:
        job = await train(client, planted_csv(tmp_path, rows=600))
    assert job["status"] == "succeeded", job["error"]
    tracking = job["result"]["tracking"]
    assert tracking["status"] == "logged", tracking
    assert "track" in job["stages_done"]
    run = MlflowClient(uri).get_run(tracking["run_id"])
    assert run.data.tags["mltrainer.model_id"] == job["model_id"]

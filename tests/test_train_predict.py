"""The spine: train → job_status → predict through a real MCP client, on every transport."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path

import pytest
from conftest import connect, payload, train_until_done

from mltrainer.state.settings import Settings

SPINE_TOOLS = {
    "train_model",
    "job_status",
    "list_jobs",
    "cancel_job",
    "predict",
    "list_secrets",
    "set_secret",
}


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["memory", "stdio", "http"])
async def test_train_then_predict(
    transport: str, settings: Settings, churn_csv: Path, request
) -> None:
    url = request.getfixturevalue("http_server") if transport == "http" else None
    async with connect(transport, settings, url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) >= SPINE_TOOLS
        for name in SPINE_TOOLS:
            assert tools[name].output_schema, f"{name} has no output schema"
            assert tools[name].description and len(tools[name].description) > 40

        progress: list[float] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)

        trained = await train_until_done(
            client,
            {"dataset": str(churn_csv), "target": "label", "time_budget_s": 10},
            progress_callback=on_progress,
        )
        job = payload(trained)
        images = [c for c in trained.content if getattr(c, "type", "") == "image"]
        assert images and all(base64.b64decode(i.data)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
        assert job["status"] == "succeeded", job
        assert job["model_id"] and job["metric"] and job["score"] > 0.6
        assert progress and progress == sorted(progress)

        status = payload(await client.call_tool("job_status", {"job_id": job["job_id"]}))
        assert status["status"] == "succeeded" and status["model_id"] == job["model_id"]

        listed = payload(await client.call_tool("list_jobs", {}))
        assert job["job_id"] in [j["job_id"] for j in listed["jobs"]]

        new_rows = churn_csv.parent / "new.csv"
        with open(churn_csv) as src, open(new_rows, "w", newline="") as dst:
            reader = csv.DictReader(src)
            writer = csv.DictWriter(dst, fieldnames=["x1", "x2", "colour"])
            writer.writeheader()
            for i, row in enumerate(reader):
                if i == 25:
                    break
                writer.writerow({k: row[k] for k in ("x1", "x2", "colour")})
        out = payload(
            await client.call_tool("predict", {"model": job["model_id"], "dataset": str(new_rows)})
        )
        assert out["n_rows"] == 25
        assert out["columns"] == ["prediction", "proba_no", "proba_yes"]
        with open(out["predictions_path"]) as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 25 and {r["prediction"] for r in rows} <= {"yes", "no"}
        for row in rows:
            assert abs(float(row["proba_no"]) + float(row["proba_yes"]) - 1) < 1e-6

        card = await client.read_resource(f"mltrainer://models/{job['model_id']}/card")
        assert job["model_id"] in card.contents[0].text
        manifest = json.loads(Path(status["result"]["artifacts"]["manifest.json"]).read_text())
        assert manifest["data"]["sha256"] and manifest["seed"] == 0 and manifest["library_versions"]
        plan = json.loads(
            (await client.read_resource(f"mltrainer://jobs/{job['job_id']}/plan")).contents[0].text
        )
        assert plan["plan"]["task"] == "binary" and plan["plan"]["decisions"]
        log = await client.read_resource(f"mltrainer://jobs/{job['job_id']}/log")
        assert "Stage 'train' finished" in log.contents[0].text


@pytest.mark.anyio
async def test_predict_by_job_id_and_regression(settings: Settings, tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    frame["y"] = 3 * frame["a"] - frame["b"] + rng.normal(scale=0.1, size=300)
    path = tmp_path / "reg.csv"
    frame.to_csv(path, index=False)
    async with connect("memory", settings) as client:
        job = payload(
            await train_until_done(
                client, {"dataset": str(path), "target": "y", "time_budget_s": 10}
            )
        )
        assert job["status"] == "succeeded" and job["task"] == "regression"
        out = payload(
            await client.call_tool("predict", {"model": job["job_id"], "dataset": str(path)})
        )
        assert out["columns"] == ["prediction"] and out["n_rows"] == 300


def test_a_model_file_with_foreign_types_is_refused(tmp_path: Path) -> None:
    """load_model trusts the project's allow-list only, whatever meta.json says."""
    import json

    import skops.io
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import FunctionTransformer

    from mltrainer.state.errors import UntrustedModel
    from mltrainer.state.masking import Masker
    from mltrainer.tools.training.model import ModelMeta, load_model, save_model

    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    folder = tmp_path / "m"
    meta = ModelMeta(model_id="m", task="binary", target="y", features=["x"], metric="roc_auc")
    saved = save_model(folder, model, meta, Masker())
    assert load_model(folder, sha256=saved.file_sha256).estimator.predict([[3.0]])[0] == 1
    data = json.loads((folder / "meta.json").read_text())
    data["trusted_types"] = ["builtins.eval"]  # what an earlier version trusted from here
    (folder / "meta.json").write_text(json.dumps(data))
    (folder / "model.skops").write_bytes(skops.io.dumps(FunctionTransformer(func=eval)))
    with pytest.raises(UntrustedModel, match="allow-list"):
        load_model(folder, sha256=None)

"""Training writes nothing raw: every file a job leaves (and predict's CSV) is masked and private.

A secret in the server's environment is also a class label of the data, so it reaches the plan,
the metrics, the card, meta.json, the plots and the predictions; none of those files may hold it.
"""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import connect, payload, train_until_done

from mltrainer.state.settings import Settings

CANARY = "hf_" + "Zq81xLw0pTcanaryV4lue9Kd2Rm"


@pytest.mark.anyio
async def test_a_training_job_and_predict_write_no_secret_to_disk(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", CANARY)
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    frame = pd.DataFrame(
        {
            "x": x,
            "colour": rng.choice(["red", "blue"], size=300),
            "label": np.where(x + rng.normal(scale=0.5, size=300) > 0, CANARY, "no"),
        }
    )
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)

    async with connect("memory", settings) as client:
        job = payload(
            await train_until_done(
                client,
                {"dataset": str(data), "target": "label", "time_budget_s": 6, "plots": False},
            )
        )
        assert job["status"] == "succeeded", job
        out = payload(
            await client.call_tool("predict", {"model": job["model_id"], "dataset": str(data)})
        )

    folder = settings.models_dir / job["model_id"]
    written = {path.name: path for path in folder.iterdir()}
    expected = {"meta.json", "metrics.json", "leaderboard.json", "plan.json", "manifest.json"}
    expected |= {"README.md", "predict.py", "confusion_matrix.png", "roc.png", "model.skops"}
    assert expected <= set(written), sorted(written)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name, path in written.items():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        if name != "model.skops":  # the fitted model holds its classes; it is never text
            assert CANARY.encode() not in path.read_bytes(), name
    assert "***HF_TOKEN***" in written["meta.json"].read_text()
    assert "***HF_TOKEN***" in written["plan.json"].read_text()

    predictions = Path(out["predictions_path"])
    assert stat.S_IMODE(predictions.stat().st_mode) == 0o600
    text = predictions.read_text()
    assert CANARY not in text and "***HF_TOKEN***" in text

"""train_model(runtime='modal') end to end through a real MCP client, on the fake Modal:
the same engine runs "remotely" (the fake runs its entry point), the model comes back into
the state directory, registered like a local one, and predict uses it here."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import connect, payload, train_until_done
from fakes.modal import FakeModal, enable, fast_settings

from mltrainer.state.settings import Settings


@pytest.fixture
def fake_modal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeModal:
    return enable(tmp_path / "modal-cloud", monkeypatch)


@pytest.fixture
def modal_settings(home: Path, fake_modal: FakeModal) -> Settings:
    return fast_settings(home)


@pytest.mark.anyio
async def test_train_model_on_modal_brings_back_a_model_predict_uses_here(
    modal_settings: Settings, fake_modal: FakeModal, churn_csv: Path
) -> None:
    async with connect("memory", modal_settings) as client:
        result = await train_until_done(
            client,
            {"dataset": str(churn_csv), "target": "label", "runtime": "modal", "gpu": "T4"},
        )
        job = payload(result)
        assert job["status"] == "succeeded", job["error"]
        assert job["runtime"] == "modal" and job["remote"]["remote_id"].startswith("fc-")
        assert job["model_id"] and job["result"]["leaderboard"]
        assert job["preflight"]["estimate"]["usd"] > 0
        predicted = payload(
            await client.call_tool("predict", {"model": job["model_id"], "dataset": str(churn_csv)})
        )
        assert predicted["n_rows"] == 400
    assert len(fake_modal.calls("spawn")) == 1

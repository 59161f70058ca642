"""Training the traps of bench/traps.py through a real MCP server, once per test module.

Each trap is trained with ``train_model`` and its fresh rows predicted with ``predict``, as a
person would; the tests then hold the reported numbers against the fresh rows' score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pandas as pd
from conftest import connect

from bench.traps import Trap, fresh_score, train_and_predict
from mltrainer.state.settings import Settings


@dataclass
class Trained:
    trap: Trap
    job: dict[str, Any]
    prediction: dict[str, Any] = field(default_factory=dict)
    predictions: pd.DataFrame | None = None
    settings: Settings | None = None  # of the server that trained it (its state directory)

    @property
    def result(self) -> dict[str, Any]:
        assert self.job["status"] == "succeeded", self.job.get("error")
        return self.job["result"] or {}

    @property
    def fresh(self) -> float:
        assert self.predictions is not None
        return fresh_score(self.trap, self.predictions)

    def decisions(self, stage: str) -> list[str]:
        return [d["decision"] for d in self.result["decisions"] if d["stage"] == stage]

    def headline(self, *words: str) -> list[str]:
        return [h for h in self.result["headline"] if all(w in h for w in words)]


def train_all(
    root: Path, runs: dict[str, tuple[Trap, dict[str, Any]]], budget: int = 8
) -> dict[str, Trained]:
    """Every trap of ``runs`` (name → trap and extra train_model arguments), one server."""
    data = root / "data"
    data.mkdir(exist_ok=True)
    settings = Settings(home=root / "home", data_roots=[data])

    async def go() -> dict[str, Trained]:
        out = {}
        async with connect("memory", settings) as client:
            for name, (trap, extra) in runs.items():
                done = await train_and_predict(client, trap, data, budget, **extra)
                out[name] = Trained(
                    trap, done.job, done.prediction, done.predictions, settings=settings
                )
        return out

    return anyio.run(go)

"""``mltrainer demo``: the project's main job, end to end, offline.

It starts the MCP server over stdio exactly as an MCP client would, trains on the breast
cancer dataset that ships with scikit-learn, shows progress, and predicts.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(stderr=False)


def write_demo_data(folder: Path) -> tuple[Path, Path]:
    from sklearn.datasets import load_breast_cancer

    folder.mkdir(parents=True, exist_ok=True)
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    train, new = frame.iloc[:-10], frame.iloc[-10:].drop(columns=["target"])
    train_path, new_path = folder / "breast_cancer.csv", folder / "breast_cancer_new.csv"
    train.to_csv(train_path, index=False)
    new.to_csv(new_path, index=False)
    return train_path, new_path


def structured(result: Any, tool: str) -> dict[str, Any]:
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        raise SystemExit(f"{tool} failed: {text}")
    return dict(result.structured_content or {})


async def _run(time_budget_s: int) -> int:
    from mcp import Client, StdioServerParameters

    from mltrainer.state.settings import Settings

    settings = Settings()
    # Under datasets/: the only part of the state directory that tools may read.
    train_path, new_path = write_demo_data(settings.datasets_dir / "demo")
    console.print(f"[bold]mltrainer demo[/] — state in {settings.home}")
    console.print(f"Dataset: {train_path} (scikit-learn's breast cancer, {time_budget_s}s budget)")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-P", "-m", "mltrainer.server.cli", "serve"],
        env={"MLTRAINER_HOME": str(settings.home), "PYTHONUNBUFFERED": "1"},
        cwd=os.getcwd(),
    )
    async with Client(params) as client:
        tools = await client.list_tools()
        console.print(f"Connected over stdio: {len(tools.tools)} tools.")
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("training", total=1.0)

            async def on_progress(
                progress: float, total: float | None, message: str | None
            ) -> None:
                bar.update(task, completed=progress, description=(message or "training")[:60])

            job = structured(
                await client.call_tool(
                    "train_model",
                    {
                        "dataset": str(train_path),
                        "target": "target",
                        "time_budget_s": time_budget_s,
                        "wait_s": 45,  # then job_status, below: no call waits past 50 s
                    },
                    progress_callback=on_progress,
                ),
                "train_model",
            )
            while job["status"] in ("queued", "running"):
                job = structured(
                    await client.call_tool(
                        "job_status",
                        {"job_id": job["job_id"], "wait_s": 30},
                        progress_callback=on_progress,
                    ),
                    "job_status",
                )
            bar.update(task, completed=1.0, description=job["status"])
        if job["status"] != "succeeded":
            console.print(f"[red]Training {job['status']}:[/] {job.get('error')}")
            return 1
        holdout = (job.get("result") or {}).get("holdout", {}).get(job["metric"])
        tested = (
            f"; on held-out test rows: [bold green]{holdout:.4f}[/]" if holdout is not None else ""
        )
        console.print(
            f"Model [bold]{job['model_id']}[/]: validation {job['metric']} = "
            f"[bold green]{job['score']:.4f}[/]{tested}"
        )
        out = structured(
            await client.call_tool("predict", {"model": job["model_id"], "dataset": str(new_path)}),
            "predict",
        )
    table = Table(title=f"Predictions for {out['n_rows']} new rows (first {len(out['preview'])})")
    for column in out["columns"]:
        table.add_column(column)
    for row in out["preview"]:
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(table)
    console.print(f"All predictions: {out['predictions_path']}")
    return 0


def run_demo(time_budget_s: int = 20) -> int:
    return anyio.run(_run, time_budget_s)
